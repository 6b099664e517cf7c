"""A tiny guard process: if `warroom sandbox up` dies without cleaning up, stop what it started.

`sandbox up` stops its servers itself on SIGINT/SIGTERM. This covers SIGKILL, a crash or an
OOM kill of that process: PostgreSQL and Redis daemonise, so without it they would live on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tui.sandbox.base import pid_alive

POLL_S = 1.0


def spawn(directory: Path) -> subprocess.Popen[bytes]:
    """Start the guard for this process and sandbox folder."""
    return subprocess.Popen(
        [sys.executable, "-m", "tui.sandbox.watchdog", str(os.getpid()), str(directory)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C meant for the sandbox must not kill the guard first
    )



def reap(directory: Path) -> None:
    """Stop every server listed in DIR/sandbox.json (fast shutdown, then kill)."""
    state_path = directory / "sandbox.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return
    pids = [int(pid) for pid in state.get("pids", {}).values()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL: fast shutdown; Redis: exits
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        state_path.unlink()


def main(parent: int, directory: Path) -> None:
    # Reparenting, not kill(pid, 0): a dead parent can linger as a zombie that still "exists".
    while os.getppid() == parent:
        time.sleep(POLL_S)
    reap(directory)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
