"""`warroom demo`: start the local sandbox in a child process and open the cockpit on it.

The sandbox ends with the demo, however the demo ends: it stops when the pipe the demo holds on
its standard input closes (quit, SIGTERM, SIGHUP and SIGKILL alike), and removes the demo's
temporary folder. Folders a demo could not remove (everything killed at once) go at the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tui.sandbox.base import DEMO_PREFIX, pid_alive, running, started_at, warnings_to

READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
PREFIX = DEMO_PREFIX
OWNER_FILE = "demo.pid"  # "PID START-TIME" of the demo that made the folder
YOUNG_S = 60  # a folder without OWNER_FILE this young may be a demo that is just starting
# What `sandbox up` prints worth showing while it starts; the rest (warnings too) stays in its log.
PROGRESS = ("components:", "injected ", "ready: ")


def spawn_sandbox(directory: Path, scenarios: list[str], *, temporary: bool) -> subprocess.Popen[str]:
    from tui.sandbox.http_app import ensure_tokens

    ensure_tokens()  # the sandbox inherits its api tokens; the config's headers_env finds them here
    command = [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory), "--stop-on-eof"]
    if temporary:
        command.append("--temporary")
    for scenario in scenarios:
        command += ["--scenario", scenario]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,  # our end closes when we end, however: the sandbox then stops
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the operator's Ctrl-C is for the cockpit; we stop the sandbox
    )


def wait_ready(process: subprocess.Popen[str], log_path: Path) -> None:
    """Return once the sandbox has printed `ready:`; all it prints goes to `log_path`."""
    assert process.stdout is not None
    log = log_path.open("w", encoding="utf-8")
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.write(line)
        log.flush()
        seen.append(line)
        if line.startswith(PROGRESS):
            print(f"  {line.rstrip()}", file=sys.stderr)
        if line.startswith("ready: "):
            # Keep the pipe drained into the log so the sandbox never blocks writing.
            def drain() -> None:
                with contextlib.suppress(OSError, ValueError):
                    for rest in process.stdout:  # type: ignore[union-attr]
                        log.write(rest)
                        log.flush()

            threading.Thread(target=drain, daemon=True).start()
            return
    raise RuntimeError("the sandbox did not start:\n" + "".join(seen[-20:]))


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()


def _in_use(folder: Path, mtime: float) -> bool:
    try:
        pid, _, started = (folder / OWNER_FILE).read_text().partition(" ")
        return running(int(pid), int(started) if started.strip() else None)
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return True  # unreadable: not ours to judge
    # No owner file: a demo between mkdtemp and writing it, or one of an older warroom.
    if time.time() - mtime < YOUNG_S:
        return True
    try:
        pid = int(json.loads((folder / "sandbox.json").read_text()).get("pid", 0))
    except (OSError, ValueError, AttributeError):
        return False
    return pid > 0 and pid_alive(pid)


def sweep_stale(tmp: Path | None = None) -> int:
    """Remove our temporary demo folders whose demo is gone; how many were removed."""
    removed = 0
    for folder in Path(tmp or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or _in_use(folder, info.st_mtime):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def main(args: Any) -> int:
    from tui.cli import UsageError
    from tui.sandbox.scenarios import SCENARIOS, unknown

    for scenario in args.scenario:
        if scenario not in SCENARIOS:
            raise UsageError(unknown(scenario))
    if removed := sweep_stale():
        print(f"warroom demo: removed {removed} folder(s) left by earlier demos", file=sys.stderr)
    temporary = args.dir is None
    directory = Path(args.dir or tempfile.mkdtemp(prefix=PREFIX)).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if temporary:
        (directory / OWNER_FILE).write_text(f"{os.getpid()} {started_at(os.getpid()) or ''}\n", encoding="utf-8")
    warnings_to(directory / "warnings.log")
    print(f"warroom demo: starting the sandbox in {directory} ...", file=sys.stderr)
    process = spawn_sandbox(directory, args.scenario, temporary=temporary)
    try:
        try:
            wait_ready(process, directory / "sandbox.log")
        except RuntimeError as exc:
            print(f"warroom demo: {exc}", file=sys.stderr)
            return 1
        from tui.cockpit import main as cockpit_main

        cockpit_args = argparse.Namespace(**vars(args))
        cockpit_args.config = directory / "warroom.toml"
        cockpit_args.env = None
        cockpit_args.sandbox_dir = directory
        code = cockpit_main(cockpit_args)
    finally:
        stop_sandbox(process)
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):  # after a hang-up there is no terminal left to tell
        if temporary:
            print("warroom demo: sandbox stopped and its folder removed.", file=sys.stderr)
        else:
            print(f"warroom demo: sandbox stopped. Drill again with: warroom sandbox up --dir {directory}", file=sys.stderr)
    return int(code or 0)
