"""`warroom demo`: start the local sandbox in a child process and open the cockpit on it."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 90


def start_sandbox(directory: Path, scenarios: list[str]) -> subprocess.Popen[str]:
    """Start `warroom sandbox up` and return once it has printed `ready:`."""
    command = [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory)]
    for scenario in scenarios:
        command += ["--scenario", scenario]
    log = (directory / "sandbox.log").open("w", encoding="utf-8")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.write(line)
        log.flush()
        seen.append(line)
        print(f"  {line.rstrip()}", file=sys.stderr)
        if line.startswith("ready: "):
            # Keep the pipe drained into the log so the sandbox never blocks writing.
            def drain() -> None:
                for rest in process.stdout:  # type: ignore[union-attr]
                    log.write(rest)
                    log.flush()

            threading.Thread(target=drain, daemon=True).start()
            return process
    process.kill()
    raise RuntimeError("the sandbox did not start:\n" + "".join(seen[-20:]))


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def main(args: Any) -> int:
    from tui.cli import UsageError
    from tui.sandbox.scenarios import SCENARIOS, unknown

    for scenario in args.scenario:
        if scenario not in SCENARIOS:
            raise UsageError(unknown(scenario))
    directory = Path(args.dir or tempfile.mkdtemp(prefix="warroom-demo-")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    print(f"warroom demo: starting the sandbox in {directory} ...", file=sys.stderr)
    try:
        process = start_sandbox(directory, args.scenario)
    except RuntimeError as exc:
        print(f"warroom demo: {exc}", file=sys.stderr)
        return 1
    try:
        from tui.cockpit import main as cockpit_main

        cockpit_args = argparse.Namespace(**vars(args))
        cockpit_args.config = directory / "warroom.toml"
        cockpit_args.env = None
        cockpit_args.sandbox_dir = directory
        code = cockpit_main(cockpit_args)
    finally:
        stop_sandbox(process)
    print(
        f"warroom demo: sandbox stopped. Drill again with: warroom sandbox up --dir {directory}",
        file=sys.stderr,
    )
    return int(code or 0)
