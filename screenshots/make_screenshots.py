"""Regenerate the README screenshots: `python screenshots/make_screenshots.py`.

Starts the local sandbox with `lock-contention`, `replication-lag` and `queue-backlog`
injected, opens the cockpit on it with live probes (120x40, 1 s refresh) and writes:

- screenshots/cockpit.svg      the main screen a few seconds into the incident
- screenshots/locks.svg        the Locks drill-down (blocker and blocked, full queries)
- screenshots/replication.svg  the Replication drill-down (lag charts, per-replica table)
- screenshots/guided.svg       the lock-contention runbook in guided mode, at the failing
                               step that names the blocking pid

The readings are real, so pids, ports and figures differ from run to run. The snapshot tests
use fixed readings instead (tests/tui/__snapshots__/). Needs what `warroom demo` needs; with a
reachable Docker engine (DOCKER_HOST) the sandbox's containers are in the shots too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SIZE = (120, 40)
SCENARIOS = ("lock-contention", "replication-lag", "queue-backlog")
WARM_UP_S = 6.0  # long enough for sparklines and lag charts to show a trend


def start_sandbox(directory: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory), "--stop-on-eof"]
    for scenario in SCENARIOS:
        argv += ["--scenario", scenario]
    process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ready: "):
            # Keep draining its output so the sandbox never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process
    raise SystemExit("the sandbox did not start: " + " ".join(argv))


async def shoot(config: Path) -> list[Path]:
    from probes.config import load_config
    from tui.app import make_app

    env = load_config(config).environment()
    app = make_app(env, refresh_s=1.0)
    written: list[Path] = []

    def save(name: str) -> None:
        path = HERE / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"warroom · {name}"), encoding="utf-8")
        written.append(path)

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(WARM_UP_S)
        save("cockpit")
        for name, key in (("locks", "3"), ("replication", "4")):
            await pilot.press(key, "enter")
            await pilot.pause(1.5)
            save(name)
            await pilot.press("escape")
        app.open_runbook("lock-contention", guided=True)
        await pilot.pause(2.0)  # step 1 runs on open
        await pilot.press("enter")  # step 2: find the root blocker (fails, names the pid)
        await pilot.pause(2.0)
        save("guided")
    return written


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="warroom-shots-"))
    # The guided run writes an incident journal: keep it with the sandbox, not the user's.
    os.environ["WARROOM_DATA_DIR"] = str(directory / "data")
    print(f"starting a sandbox in {directory} with {', '.join(SCENARIOS)} ...", file=sys.stderr)
    from tui.sandbox.http_app import ensure_tokens

    ensure_tokens()  # as `warroom demo` does: the sandbox and the config's headers_env share them
    sandbox = start_sandbox(directory)
    try:
        for path in asyncio.run(shoot(directory / "warroom.toml")):
            print(path)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
