"""Data access never imports the UI, and `warroom check` never loads Textual."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

MODULES = [
    "probes.config",
    "probes.registry",
    "probes.result",
    "probes.postgres",
    "probes.redis",
    "probes.http",
    "probes.docker",
    "runbooks.loader",
    "runbooks.classify",
    "runbooks.runner",
    "runbooks.journal",
    "tui.check",
]


def test_probes_and_runbooks_do_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"UI modules imported by data access: {result.stdout}"


def test_cli_startup_does_not_import_backends() -> None:
    code = (
        "import sys\n"
        "import tui.cli\n"
        "tui.cli.build_parser()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'redis', 'docker', 'plotext', 'textual'))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
