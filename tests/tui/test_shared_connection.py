"""The cockpit diagnosing connection exhaustion never takes one more slot, and its action says how many (Pilot).

Runbook reads in the cockpit go through the probes' own connection to each target
(runbooks.sessions, tui.scheduler.LiveSource.session); the terminate action's confirmation
counts the sessions it will reach on that connection and lists the first five, at 80x24.
The headless walk's single connection is tested in tests/runbooks/test_action_findings.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg

from tests.conftest import SandboxHandle
from tests.tui.test_cockpit import screen_text
from tui.app import make_app
from tui.screens.confirm import ConfirmAction
from tui.screens.runbook import RunbookScreen

WAIT_S = 30.0
HOARDERS = "terminate-idle-hoarders"


async def until(pilot: Any, done: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g}s: {what}")
        await pilot.pause(0.05)


async def count(admin: psycopg.AsyncConnection[Any], sql: str) -> set[int]:
    cur = await admin.execute(sql)
    return {int(r[0]) for r in await cur.fetchall()}


WARROOM = "SELECT pid FROM pg_stat_activity WHERE application_name = 'warroom'"
CULPRITS = "SELECT pid FROM pg_stat_activity WHERE application_name = 'sandbox-exhaust' AND state = 'idle'"


async def test_a_cockpit_walk_in_connection_exhaustion_uses_no_extra_slot_and_counts_its_action(sandbox: SandboxHandle) -> None:
    app = make_app(sandbox.env, refresh_s=1.0, runbook="connection-pool-exhausted")
    async with await psycopg.AsyncConnection.connect(sandbox.admin_dsn(), autocommit=True) as admin, \
            app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the checklist")
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        run = screen.run
        primary = next(t for t in sandbox.env.postgres if t.name == "primary")
        probes = app.source.session("postgres", primary)  # type: ignore[attr-defined]
        await until(pilot, lambda: probes.conn is not None and not probes.conn.closed, "the probes' connection")
        before = await count(admin, WARROOM)
        assert probes.conn.info.backend_pid in before, before

        with sandbox.scenario("connection-exhaustion"):
            culprits = await count(admin, CULPRITS)
            assert len(culprits) >= 30, culprits
            seen: list[set[int]] = []

            async def sample() -> None:
                while True:
                    seen.append(await count(admin, WARROOM))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            try:
                deadline = time.monotonic() + WAIT_S
                while run.states["top-holders"].status != "fail" and time.monotonic() < deadline:
                    await pilot.press("R")
                    await pilot.pause(0.2)
                    await until(pilot, lambda: not any(w.group == "runbook-run-all" and w.is_running for w in screen.workers),
                                "run all")
                assert run.states["top-holders"].status == "fail", run.states["top-holders"].summary
                reads = probes.reads
                assert reads >= 1  # the walk's sql step read through the probes' connection
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            # Never one more warroom connection to the primary while the runbook ran.
            assert seen and max(len(s) for s in seen) <= len(before), (before, [s for s in seen if len(s) > len(before)][:3])

            screen.checklist.select_step(HOARDERS)
            await pilot.pause()
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmAction), "the confirmation")
            dialog = app.screen
            assert isinstance(dialog, ConfirmAction)
            assert dialog.hold and app.focused is not None and app.focused.id == "cancel"
            await until(pilot, lambda: dialog.counted is not None, "the sessions counted")
            assert probes.reads > reads  # counted on the probes' connection too
            assert dialog.counted.count == len(culprits), dialog.counted
            text = screen_text(app)
            assert re.search(rf"terminate {len(culprits)} sessions on primary", text), text
            listed = re.findall(r"^\W*(\d+) sandbox-exhaust \(shop\) idle", text, re.M)
            assert len(listed) == 5 and {int(p) for p in listed} <= culprits, text
            assert f"... and {len(culprits) - 5} more" in text, text
            # At 80x24 the whole dialog fits: its buttons are on screen.
            run_button = dialog.query_one("#run")
            assert not run_button.disabled and run_button.region.bottom <= 24 and run_button.region.height > 0
            assert await count(admin, CULPRITS) == culprits  # nothing happens before the answer

            await pilot.press("tab", "enter")  # to "Run action", press it
            await until(pilot, lambda: run.states[HOARDERS].status not in ("pending", "running"), "the action")
            state = run.states[HOARDERS]
            assert state.status == "pass", state.summary
            assert f"{len(culprits)} of {len(culprits)} sessions terminated" in state.summary, state.summary
            for _ in range(40):
                if not await count(admin, CULPRITS) & culprits:
                    break
                await asyncio.sleep(0.05)
            assert not await count(admin, CULPRITS) & culprits
