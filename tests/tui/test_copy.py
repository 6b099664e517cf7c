"""`y` copies a step's command with OSC 52: the bytes on a real pseudo-terminal, Pilot, and `runbook show`."""

from __future__ import annotations

import base64
import fcntl
import http.server
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbooks.copyable import shell_block, step_command
from runbooks.loader import parse_runbook
from tests.tui import fixtures
from tests.tui.test_runbook_ui import until
from tests.tui.test_terminal import ANSI
from tui.app import make_app
from tui.screens.checklist import ChecklistScreen
from tui.screens.guided import GuidedScreen

OSC52 = re.compile(rb"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")

RUNBOOK = """---
id: copy-drill
title: Copy drill
severity: low
---
1. **Tail the worker's log.** Run this on the edge host; warroom cannot.
   ```bash
   wrangler tail --format pretty ghostworks-edge
   ```
   <!-- step: id=tail -->
2. **Ask the on-call lead.** Nothing to run here.
   <!-- step: id=ask -->
3. **Is the API up?**
   ```probe target=api probe=http id=api-up
   ```
4. **Recent worker logs.**
   ```docker target=docker id=logs
   logs worker --since 10m
   ```
5. **Which sessions wait?**
   ```sql target=primary id=waiting
   SELECT pid, wait_event FROM pg_stat_activity WHERE wait_event IS NOT NULL AND state = 'active' AND backend_type = 'client backend'
   ```
"""
SQL = "SELECT pid, wait_event FROM pg_stat_activity WHERE wait_event IS NOT NULL AND state = 'active' AND backend_type = 'client backend'"


def _runbook() -> Any:
    rb, problems = parse_runbook(RUNBOOK, "copy-drill.md")
    assert rb is not None, problems
    return rb


@pytest.fixture
def runbook_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "copy-drill.md").write_text(RUNBOOK)
    return folder


# --- what a step copies -------------------------------------------------------------------


def test_each_kind_of_step_copies_its_command() -> None:
    rb = _runbook()
    assert step_command(rb.step("tail")) == "wrangler tail --format pretty ghostworks-edge"
    assert step_command(rb.step("ask")) == ""
    assert step_command(rb.step("api-up")) == ""  # a probe block is warroom's YAML, not a command
    assert step_command(rb.step("logs")) == "docker logs worker --since 10m"  # as typed in a shell
    assert step_command(rb.step("waiting")) == SQL
    assert step_command(rb.step("logs"), "DOCKER logs api") == "DOCKER logs api"  # already a docker command line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Look:\n```text\nsample output\n```\n```sh\nuptime\n```\n", "uptime"),  # the first *shell* block
        ("```console\n$ df -h /var\nFilesystem  Size\n$ free -m\n```\n", "df -h /var\nfree -m"),  # prompts and output dropped
        ("```\nkubectl get pods\n```\n", "kubectl get pods"),  # unlabelled: used when nothing else is
        ("```\nsample\n```\n```bash\nls\n```\n", "ls"),  # ... but a labelled block comes first
        ("```python\nprint(1)\n```\n", ""),
        ("no blocks at all", ""),
    ],
)
def test_the_first_shell_block(text: str, expected: str) -> None:
    assert shell_block(text) == expected


# --- Pilot: the checklist and guided mode ---------------------------------------------------


async def test_y_copies_in_the_checklist_and_in_guided_mode(runbook_dir: Path) -> None:
    app = make_app(fixtures.environment(), source=fixtures.incident_source(), clock=fixtures.clock,
                   runbook_dirs=[runbook_dir], runbook="copy-drill")
    notes: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        real_notify = app.notify

        def notify(message: str, **kwargs: Any) -> None:
            notes.append(message)
            real_notify(message, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        await until(pilot, lambda: isinstance(app.screen, ChecklistScreen), what="the checklist")
        screen = app.screen
        assert isinstance(screen, ChecklistScreen)
        binding = next(b for b in screen.BINDINGS if getattr(b, "id", None) == "runbook.copy")
        assert (binding.key, binding.description) == ("y", "Copy")  # type: ignore[union-attr]

        screen.checklist.select_step("tail")
        await pilot.press("y")
        assert app.clipboard == "wrangler tail --format pretty ghostworks-edge"
        assert notes[-1] == "copied: wrangler tail --format pretty ghostworks…"  # its first 40 characters
        screen.checklist.select_step("ask")
        await pilot.press("y")
        assert notes[-1] == "ask: nothing to copy"
        assert app.clipboard == "wrangler tail --format pretty ghostworks-edge"  # left as it was
        screen.checklist.select_step("waiting")
        await pilot.press("y")
        assert app.clipboard == SQL and notes[-1] == f"copied: {SQL[:40]}…"

        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GuidedScreen), what="guided mode")
        guided = app.screen
        assert isinstance(guided, GuidedScreen) and guided.current_step().id == "waiting"  # type: ignore[union-attr]
        guided.path = ["logs"]
        await pilot.press("y")
        assert app.clipboard == "docker logs worker --since 10m"
        assert notes[-1] == "copied: docker logs worker --since 10m"  # short: shown whole
        # Guided mode's key bar leaves `y` out (Quit would not fit at 120 columns); its hint says it.
        guided_copy = next(b for b in guided.BINDINGS if getattr(b, "id", None) == "runbook.copy")
        assert guided_copy.key == "y" and not guided_copy.show  # type: ignore[union-attr]
        assert guided.hint(rb_step(guided, "tail")) == "a manual step: p pass · f fail · s skip · y copies its command"
        assert guided.hint(rb_step(guided, "ask")) == "a manual step: p pass · f fail · s skip"


def rb_step(screen: Any, step_id: str) -> Any:
    return screen.run.runbook.step(step_id)


# --- a real terminal ------------------------------------------------------------------------


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def config(tmp_path: Path, runbook_dir: Path) -> Iterator[Path]:
    """A config with one real HTTP endpoint on loopback and the folder of the copy drill."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "warroom.toml"
    path.write_text(f"runbook_dirs = [{json.dumps(str(runbook_dir))}]\n[environments.lab]\n[[environments.lab.http]]\n"
                    f'name = "api"\nurl = "http://127.0.0.1:{server.server_port}/health"\n')
    try:
        yield path
    finally:
        server.shutdown()


def read_until(master: int, output: bytearray, found: Callable[[bytes], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not found(bytes(output)):
        if time.monotonic() > deadline:
            return False
        if select.select([master], [], [], 0.1)[0]:
            try:
                output += os.read(master, 65536)
            except OSError:  # the process closed the terminal
                return found(bytes(output))
    return True


def test_y_writes_osc_52_to_the_terminal(config: Path) -> None:
    """The cockpit on a pseudo-terminal, as over SSH: `y` on the checklist's manual step writes
    the OSC 52 sequence whose base64 is the command (what a terminal puts on its clipboard)."""
    env = {**os.environ, "TERM": "xterm-256color"}
    argv = [sys.executable, "-m", "tui", "--config", str(config), "--refresh", "1", "--runbook", "copy-drill"]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = bytearray()
    try:
        # The checklist opens on its first step, the manual `wrangler tail`.
        shown = read_until(master, output, lambda out: b"Tail the worker" in ANSI.sub(b"", out), 20)
        assert shown, ANSI.sub(b"", bytes(output))[-2000:]
        assert not OSC52.search(output)  # nothing is copied before the key
        os.write(master, b"y")
        assert read_until(master, output, lambda out: OSC52.search(out) is not None, 10), "no OSC 52 sequence after y"
        read_until(master, output, lambda out: b"copied: wrangler" in ANSI.sub(b"", out), 5)
        os.write(master, b"q")
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert code == 0
    copied = [base64.b64decode(m) for m in OSC52.findall(bytes(output))]
    assert copied == [b"wrangler tail --format pretty ghostworks-edge"], copied
    assert b"copied: wrangler tail" in ANSI.sub(b"", bytes(output))


# --- warroom runbook show -------------------------------------------------------------------


def test_runbook_show_prints_every_steps_command_manual_ones_included(runbook_dir: Path) -> None:
    path = str(runbook_dir / "copy-drill.md")
    shown = subprocess.run([sys.executable, "-m", "tui", "runbook", "show", path], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    tail = lines.index("  1. [manual] tail: Tail the worker's log.")
    assert lines[tail + 1] == "         | wrangler tail --format pretty ghostworks-edge"
    ask = lines.index("  2. [manual] ask: Ask the on-call lead.")
    assert not lines[ask + 1].startswith("         |")  # nothing to run: nothing printed
    assert "         | logs worker --since 10m" in lines and f"         | {SQL}" in lines
    as_json = subprocess.run([sys.executable, "-m", "tui", "runbook", "show", path, "--json"], capture_output=True, text=True, timeout=30)
    steps = {s["id"]: s for s in json.loads(as_json.stdout)["steps"]}
    assert steps["tail"]["copy"] == "wrangler tail --format pretty ghostworks-edge" and steps["tail"]["command"] is None
    assert steps["logs"]["copy"] == "docker logs worker --since 10m" and steps["ask"]["copy"] is None
