"""End to end: the cockpit on the real sandbox sees an injected lock contention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.tui.test_cockpit import screen_text
from tui.app import make_app
from widgets.pane import Pane


async def wait_until(pilot, condition: Callable[[], bool], timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


async def test_lock_contention_turns_locks_pane_fail_with_the_blockers_pid(sandbox) -> None:  # type: ignore[no-untyped-def]
    primary = next(t.name for t in sandbox.env.postgres if t.role == "primary")
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        locks = app.screen.query_one("#locks", Pane)
        key = ("postgres", primary, "locks")
        assert await wait_until(pilot, lambda: app.store.reading(key) is not None, 15), "no locks reading"
        assert locks.state == "ok", app.store.reading(key).latest.summary  # type: ignore[union-attr]
        # The control CLI blocks; run it off the event loop so the cockpit keeps refreshing.
        await asyncio.to_thread(sandbox.inject, "lock-contention")
        try:
            assert await wait_until(pilot, lambda: locks.state == "fail", 60), locks.state
            reading = app.store.reading(key)
            assert reading is not None
            blocker = reading.result.data["chains"][0]["blocker_pid"]
            text = screen_text(app)
            assert f"pid {blocker}" in text
            assert "Locks · fail" in text
        finally:
            await asyncio.to_thread(sandbox.heal, "lock-contention")
        assert await wait_until(pilot, lambda: locks.state == "ok", 30), locks.state
