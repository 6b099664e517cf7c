"""The cockpit as a real process on a pseudo-terminal, as an operator runs it over SSH."""

from __future__ import annotations

import fcntl
import http.server
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

COLOUR = re.compile(rb"\x1b\[[0-9;]*(?:38|48);[25];[0-9;]*m|\x1b\[(?:3|4|9|10)[0-7]m")
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    """A config with one real HTTP endpoint on loopback."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "warroom.toml"
    path.write_text(
        f'[environments.lab]\n[[environments.lab.http]]\nname = "api"\nurl = "http://127.0.0.1:{server.server_port}/health"\n'
    )
    try:
        yield path
    finally:
        server.shutdown()


def run_in_terminal(argv: list[str], env: dict[str, str], size: tuple[int, int], until: bytes, within_s: float) -> tuple[bytes, int]:
    """Everything the process writes until `until` shows (or `within_s`), then `q`; its exit status."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline and until not in ANSI.sub(b"", output):
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                output += os.read(master, 65536)
        time.sleep(0.3)  # a few more frames
        while select.select([master], [], [], 0)[0]:
            output += os.read(master, 65536)
        os.write(master, b"q")
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return output, code


def test_no_color_strips_every_colour_and_the_states_still_read(config: Path) -> None:
    env = {**os.environ, "TERM": "xterm-256color", "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "tui", "--config", str(config), "--refresh", "1"]
    output, code = run_in_terminal(argv, env, (80, 24), until=b"200", within_s=15)
    text = ANSI.sub(b"", output).decode("utf-8", "replace")
    assert code == 0
    assert "api" in text and "200" in text and "Services" in text
    assert "●" in text  # the ok mark: a shape, not only a colour
    assert COLOUR.findall(output) == []


def test_with_colour_the_same_screen_is_coloured(config: Path) -> None:
    # The check above can fail: without NO_COLOR the same run writes colour codes.
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"}
    argv = [sys.executable, "-m", "tui", "--config", str(config), "--refresh", "1"]
    output, code = run_in_terminal(argv, env, (80, 24), until=b"200", within_s=15)
    assert code == 0
    assert COLOUR.findall(output)


async def test_no_color_reaches_every_widget_including_the_blank_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The run above catches a coloured cell only if the terminal happens to show it (under load
    # it did: the first frame, before the panes mount, is all container). Here every widget's
    # lines are checked, the containers Textual fills without drawing them included.
    from textual.geometry import Region

    from tests.tui.conftest import incident_app, main_screen_settled

    monkeypatch.setenv("NO_COLOR", "1")
    app = incident_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        coloured, checked = [], set()
        for widget in app.screen.walk_children(with_self=True):
            checked.add(type(widget).__name__)
            width, height = widget.size
            for strip in widget.render_lines(Region(0, 0, width, height)):
                for segment in strip:
                    colours = (segment.style.color, segment.style.bgcolor) if segment.style else ()
                    if any(colour is not None and not colour.is_default for colour in colours):
                        coloured.append(type(widget).__name__)
        assert sorted(set(coloured)) == []
        assert {"MainScreen", "PaneGrid", "EnvHeader", "SeriesRows"} <= checked
