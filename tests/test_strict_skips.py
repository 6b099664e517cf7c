"""Strict runs (CI): a skip is a failure, so a tier CI cannot run fails the run instead of hiding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

GATED = '''
import pytest

@pytest.mark.skipif(True, reason="the openssl CLI is not installed")
def test_tls():
    pass

def test_engine():
    pytest.skip("no Docker engine: DOCKER_HOST is unset")

def test_plain():
    pass
'''


def run_gated(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_gated.py").write_text(GATED)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "WARROOM_STRICT")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=120,
    )


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    result = run_gated(tmp_path)
    assert result.returncode == 0 and "1 passed, 2 skipped" in result.stdout, result.stdout


@pytest.mark.parametrize("env", [{"WARROOM_STRICT": "1"}, {"CI": "true"}])
def test_every_skip_fails_a_strict_run(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_gated(tmp_path, **env)
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 error" in result.stdout, result.stdout
    assert "which allows no skip: the openssl CLI is not installed" in result.stdout
    assert "which allows no skip: no Docker engine: DOCKER_HOST is unset" in result.stdout
