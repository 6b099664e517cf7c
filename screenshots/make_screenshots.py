"""Regenerate the README screenshots: `python screenshots/make_screenshots.py`.

Writes screenshots/cockpit.svg (the main screen during a lock-contention incident with a
lagging replica and a growing queue), screenshots/locks.svg and screenshots/replication.svg
(two drill-downs), all at 120x40. They are fed the fixed readings of tests/tui/fixtures.py
through `make_app(..., source=FixedSource(...))`, so they are identical on every run and need
no sandbox; the same readings drive the snapshot tests. Test baselines live separately in
tests/tui/__snapshots__/.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SIZE = (120, 40)
# name -> keys pressed on the main screen before the shot
SHOTS: dict[str, tuple[str, ...]] = {
    "cockpit": (),
    "locks": ("3", "enter"),
    "replication": ("4", "enter"),
}


async def shoot(name: str, keys: tuple[str, ...]) -> Path:
    from tests.tui import fixtures
    from tui.app import make_app

    app = make_app(fixtures.environment(), source=fixtures.incident_source(), clock=fixtures.clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.3)
        path = HERE / f"{name}.svg"
        path.write_text(app.export_screenshot(title=f"warroom · {name}"), encoding="utf-8")
    return path


def main() -> int:
    os.environ["TZ"] = "UTC"  # the header shows a clock time: keep the images stable
    time.tzset()
    for name, keys in SHOTS.items():
        print(asyncio.run(shoot(name, keys)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
