"""Test helpers for the real Prometheus stack: the skip-or-fail gate and a sandbox that runs it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tui.sandbox.prometheus import binaries, missing_line

REQUIRE_ENV = "WARROOM_REQUIRE_PROMETHEUS"


def binaries_or_skip() -> dict[str, str]:
    """{program: path} of the stack; otherwise skip with the reason (or fail when
    WARROOM_REQUIRE_PROMETHEUS=1, which .ci/run sets under CI)."""
    found, missing = binaries()
    if missing:
        reason = missing_line(missing)
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires them)", pytrace=False)
        pytest.skip(reason)
    if shutil.which("promtool"):
        found["promtool"] = shutil.which("promtool") or ""
    return found


def prometheus_sandbox() -> Iterator[Any]:
    """A sandbox of its own (no Docker) with Prometheus, Alertmanager and the exporters: the
    session's sandbox runs without them, so the rest of the suite reads what it always read."""
    from tests.conftest import sandbox_dir, start_sandbox, stop_sandbox

    binaries_or_skip()
    directory = sandbox_dir()
    handle = start_sandbox(directory, "--no-docker")
    try:
        assert "prometheus" in handle.components, "".join(handle.output)
        yield handle
    finally:
        stop_sandbox(handle)
        shutil.rmtree(directory, ignore_errors=True)
