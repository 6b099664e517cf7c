"""On the real sandbox: the header names every problem by target, a slow service reads slow (not
timed out), idle-in-transaction sessions reach the main screen, and healing reads `all ok`."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from probes.result import Status
from tests.conftest import SandboxHandle
from tests.tui.test_cockpit import screen_text
from tui.app import WarroomApp, make_app
from widgets.env_header import EnvHeader
from widgets.pane import Pane

REFRESH_S = 1.0
SLACK_S = 3.0  # on top of the bounds below, for a loaded CI machine
API = ("http", "api", "http")


def header(app: WarroomApp) -> str:
    return app.screen.query_one(EnvHeader).render_text()


async def until(pilot: Any, condition: Callable[[], bool], within_s: float, watch: Callable[[], None] = lambda: None) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        watch()
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


async def all_ok(pilot: Any, app: WarroomApp, within_s: float = 20.0) -> None:
    assert await until(pilot, lambda: header(app).endswith("│ all ok"), within_s), header(app)


async def test_latency_spike_reads_slow_with_its_time_and_never_timed_out(sandbox: SandboxHandle) -> None:
    # The walk-through's case: timeout 2 s, refresh 1 s, the api answering in 1.2-1.5 s.
    assert sandbox.env.timeout_s == 2.0
    app = make_app(sandbox.env, refresh_s=REFRESH_S)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_ok(pilot, app)
        seen: list[str] = []
        errors: list[str] = []

        def watch() -> None:
            seen.append(screen_text(app))
            latest = app.store.latest.get(API)
            if latest is not None and latest.status is Status.ERROR:
                errors.append(latest.summary)

        await asyncio.to_thread(sandbox.inject, "latency-spike")
        try:
            slow = re.compile(r"problems?: (.*; )?api slow 1\.\d s")
            # The first slow answer (up to 1.5 s) within three refreshes.
            assert await until(pilot, lambda: bool(slow.search(header(app))), 3 * REFRESH_S + 1.5 + SLACK_S, watch), header(app)
            reading = app.store.reading(API)
            assert reading is not None and reading.latest.status in (Status.FAIL, Status.WARN), reading
            assert reading.latest.value is not None and reading.latest.value >= 1000, reading.latest
            # Its rounds outlast the refresh: it is read every other tick, and the header says so.
            every = re.compile(r"api slow 1\.\d s \(read every [23] s\)")
            assert await until(pilot, lambda: bool(every.search(header(app))), 5 * REFRESH_S, watch), header(app)
            latency = app.screen.query_one("#latency", Pane)
            assert str(latency.border_subtitle).startswith("worst: api slow 1."), latency.border_subtitle
            await until(pilot, lambda: False, 3 * REFRESH_S, watch)  # a few more rounds of it
        finally:
            await asyncio.to_thread(sandbox.heal, "latency-spike")
        assert not errors, errors  # never an error without data...
        assert not [s for s in seen if "timed out" in s or "no data yet" in s], [
            line for s in seen for line in s.splitlines() if "timed out" in line or "no data yet" in line
        ]  # ...nor the words for one
        await all_ok(pilot, app)


async def test_idle_in_transaction_is_named_in_the_header_and_the_connections_pane(sandbox: SandboxHandle) -> None:
    primary = next(t.name for t in sandbox.env.postgres if t.role == "primary")
    warn_s = sandbox.env.thresholds.get("idle_in_transaction", "warn_s")
    app = make_app(sandbox.env, refresh_s=REFRESH_S)
    async with app.run_test(size=(120, 40)) as pilot:
        await all_ok(pilot, app)
        await asyncio.to_thread(sandbox.inject, "idle-in-transaction")
        try:
            # Once the session has been idle past the warn line, within three refreshes.
            named = f"{primary} idle in transaction "
            assert await until(pilot, lambda: named in header(app), warn_s + 3 * REFRESH_S + SLACK_S), header(app)
            connections = app.screen.query_one("#connections", Pane)
            assert connections.state in ("warn", "fail"), connections.state
            text = screen_text(app)
            assert "1 idle in transaction " in text, text
            assert "app sandbox-report-export" in text, text  # who holds it
        finally:
            await asyncio.to_thread(sandbox.heal, "idle-in-transaction")
        await all_ok(pilot, app)
