"""The cockpit never freezes: with the sandbox's primary really SIGSTOPped, keys answer, panes say timeout."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psutil
import psycopg
import pytest
from textual import events

from tests.conftest import SandboxHandle
from tests.tui.test_cockpit import KEY_RESPONSE_BOUND_S, screen_text
from tui.app import WarroomApp, make_app
from tui.scheduler import effective_timeout
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from widgets.pane import Pane

REFRESH_S = 1.0
SLACK_S = 5.0  # on top of the timeout and two refreshes, for a loaded CI machine
# As the terminal driver posts them: the app's own queue, no Pilot wait-for-idle in between.
HELP, ESCAPE, PANE_2 = ("question_mark", "?"), ("escape", "\x1b"), ("2", "2")


@contextlib.contextmanager
def stopped(root_pid: int) -> Iterator[list[psutil.Process]]:
    """SIGSTOP a PostgreSQL instance, postmaster and every backend: a stopped postmaster alone
    would let the cockpit's existing session keep answering. Always SIGCONT afterwards."""
    root = psutil.Process(root_pid)
    frozen: list[psutil.Process] = []
    try:
        root.send_signal(signal.SIGSTOP)  # first: a stopped postmaster forks no new backend
        frozen.append(root)
        for _ in range(10):  # again, for a backend whose fork was under way
            fresh = [p for p in root.children(recursive=True) if p not in frozen]
            if not fresh:
                break
            for process in fresh:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGSTOP)
                    frozen.append(process)
        yield frozen
    finally:
        for process in frozen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)


async def primary_answers(dsn: str, within_s: float = 30.0) -> None:
    """Until the primary runs a query again (other tests share the sandbox)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def within(pilot: Any, condition: Callable[[], bool], bound_s: float) -> bool:
    """Whether condition() held within bound_s, polled while the app runs. Timed on the clock, not
    by polls: a blocked event loop stalls this coroutine too, and shows as time gone by."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > bound_s:
            return False
        await pilot.pause(0.02)
    return time.perf_counter() - started <= bound_s


@contextlib.asynccontextmanager
async def loop_gaps() -> AsyncIterator[list[float]]:
    """The longest the event loop (the app's and this test's) went without running a ticker,
    sampled throughout the block: a freeze between two key presses shows here too."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        yield gaps
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


def pane_text(app: WarroomApp, pane: Pane) -> str:
    """What the terminal shows inside one pane."""
    region = pane.region
    lines = screen_text(app).splitlines()
    return "\n".join(line[region.x : region.right] for line in lines[region.y : region.bottom])


@pytest.mark.timeout(180)
async def test_keys_answer_while_the_real_primary_is_stopped(sandbox: SandboxHandle) -> None:
    primary = sandbox.env.postgres_named("primary")
    assert primary is not None
    key = ("postgres", primary.name, "connections")
    app = make_app(sandbox.env, refresh_s=REFRESH_S)
    timeout_s = effective_timeout(sandbox.env, REFRESH_S)
    async with app.run_test(size=(120, 40)) as pilot:
        def connections_state() -> str | None:
            reading = app.store.reading(key)
            return reading.state if reading is not None else None

        async def keys_answer() -> None:
            app.post_message(events.Key(*HELP))
            assert await within(pilot, lambda: isinstance(app.screen, HelpScreen), KEY_RESPONSE_BOUND_S), app.screen
            app.post_message(events.Key(*ESCAPE))
            assert await within(pilot, lambda: isinstance(app.screen, MainScreen), KEY_RESPONSE_BOUND_S), app.screen

        assert await within(pilot, lambda: connections_state() == "ok", 20), app.store.reading(key)
        connections = app.screen.query_one("#connections", Pane)
        stopped_at = time.monotonic()
        try:
            with stopped(sandbox.pids["primary"]) as frozen:
                async with loop_gaps() as gaps:
                    assert len(frozen) > 3, frozen  # the postmaster, its auxiliaries, the cockpit's backend
                    # The cockpit's session now waits on a process that will never answer.
                    await pilot.pause(0.3)
                    await keys_answer()
                    app.post_message(events.Key(*PANE_2))
                    assert await within(pilot, lambda: app.focused is connections, KEY_RESPONSE_BOUND_S), app.focused

                    # Within the probe timeout and two refreshes (plus slack), the pane says its figures
                    # are old and why: the last good reading stays, marked `timeout`, never shown as ok.
                    bound = timeout_s + 2 * REFRESH_S + SLACK_S - (time.monotonic() - stopped_at)
                    assert await within(pilot, lambda: connections.state != "ok", bound), connections_state()
                    reading = app.store.reading(key)
                    assert reading is not None and reading.state == "stale" and connections.state == "stale", reading
                    assert reading.latest.data.get("timeout") is True, reading.latest
                    assert f"{primary.name}: timed out" in reading.latest.summary, reading.latest.summary
                    text = pane_text(app, connections)
                    assert "Connections · stale" in text and f"{primary.name} timeout" in text, text
                    # Later rounds hang on the primary too; keys still answer.
                    await pilot.pause(2 * REFRESH_S)
                    await keys_answer()
                assert len(gaps) > 10 and max(gaps) < KEY_RESPONSE_BOUND_S, max(gaps)
        finally:  # other tests share the sandbox: it runs again before this one ends
            await primary_answers(primary.dsn)
        # And the cockpit recovers by itself once the primary runs again.
        assert await within(pilot, lambda: connections_state() == "ok", 30), app.store.reading(key)
