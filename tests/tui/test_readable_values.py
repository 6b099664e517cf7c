"""Readable values on screen: human units, no reprs in cells, stated sparkline scales, the culprit
named (Redis memory, a failing answer's body, a session's owner), distinctions kept under NO_COLOR."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from probes.result import Status
from tests.conftest import SandboxHandle
from tests.tui import fixtures
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tests.tui.test_runbook_ui import until
from tui.app import make_app
from tui.scheduler import FixedSource
from widgets.connections import usage_bar
from widgets.pane import Pane
from widgets.store import Reading

REPR = re.compile(r"\{'|\['|\[\{|': |\(0, \[")


def _with(results: list, key: tuple[str, str, str], **changes: object) -> list:
    return [dataclasses.replace(r, **changes) if r.key == key else r for r in results]


def test_usage_bar_filled_and_empty_parts_differ_in_shape() -> None:
    result = next(r for r in fixtures.incident_results() if r.probe == "connections")
    bar = usage_bar(Reading(result, result, False, 0.0), width=10).plain
    assert bar.strip() == "████████░░  78%"  # not the same glyph in two colours


async def test_no_color_screen_keeps_bars_states_and_scales_in_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fixtures.environment(), source=fixtures.incident_source(), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        text = screen_text(app)
    assert "█" in text and "░" in text
    assert "Latency · fail · 0–500 ms" in text  # the sparklines' scale, stated
    assert "Queues · warn · 0–200 jobs" in text and "Replication · warn · 0–50 MiB/20 s" in text
    assert "35 ms" in text and "24.0 MiB" in text and "42 s" in text
    assert not re.search(r"\d+ms\b|\dMB\b", text)  # one unit system: `35 ms`, MiB


async def test_drill_down_cells_are_words_not_reprs() -> None:
    results = fixtures.incident_results()
    queues = next(r for r in results if r.probe == "queues")
    rows = [dict(q) for q in queues.data["queues"]]
    rows[1]["groups"] = [{"name": "workers", "lag": 56, "pending": 4}, {"name": "audit", "lag": 0}]
    results = _with(results, queues.key, data={**queues.data, "queues": rows})
    app = make_app(fixtures.environment(), source=FixedSource(results, history=fixtures.history()), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.press("5", "enter")
        await pilot.pause()
        text = screen_text(app)
    assert "workers lag 56, audit lag 0" in text
    assert not REPR.search(text), [line for line in text.splitlines() if REPR.search(line)]
    # The memory sample names the culprit, with how much of the keyspace it saw.
    assert "sessions:web:*" in text and "12.4 MiB" in text and "68%" in text
    assert "biggest of 2000 of 48.1k keys sampled" in text


async def test_memory_pressure_names_the_prefix_in_the_queues_pane() -> None:
    results = fixtures.incident_results()
    memory = next(r for r in results if r.probe == "memory")
    app = make_app(fixtures.environment(), source=FixedSource(results), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        assert "top sessions:web:*" not in screen_text(app)  # memory is fine: no culprit line
        app.source.push([dataclasses.replace(memory, status=Status.FAIL, value=0.94, data={**memory.data, "used_memory": 98_566_144})])
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
    assert "top sessions:web:* 12.4 MiB (68%)" in text


async def test_failing_endpoint_shows_what_its_answer_says_and_the_blocker_its_owner() -> None:
    results = fixtures.incident_results()
    payments = next(r for r in results if r.target == "payments")
    results = _with(results, payments.key, data={**payments.data, "body_note": "upstream: failing, status: degraded"})
    app = make_app(fixtures.environment(), source=FixedSource(results), clock=fixtures.clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await main_screen_settled(pilot)
        services = app.screen.query_one("#services", Pane)
        text = screen_text(app)
        assert services.state == "fail" and "503  12 ms  upstream: failing" in text
        assert "billing app@10.0.4.17" in text  # the root blocker's application, user and client
        await pilot.press("3", "enter")
        await pilot.pause()
        detail = screen_text(app)
    assert "app billing  client 10.0.4.17" in detail


async def test_live_redis_memory_pressure_names_the_ballast_on_screen(sandbox: SandboxHandle) -> None:
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.store.reading(("redis", "redis", "memory_top")) is not None, timeout=30,
                    what="a first memory sample")
        await asyncio.to_thread(sandbox.inject, "redis-memory")
        try:
            # Memory turns fail, a fresh sample follows within seconds, and the pane names the prefix.
            await until(pilot, lambda: "top warroom:ballast:*" in screen_text(app), timeout=30, what="the culprit line")
            await pilot.press("5", "enter")
            await until(pilot, lambda: "warroom:ballast:*" in screen_text(app) and "keys sampled" in screen_text(app),
                        timeout=10, what="the drill-down's memory table")
        finally:
            await asyncio.to_thread(sandbox.heal, "redis-memory")


def test_queue_trend_has_one_sign_and_an_empty_queue_reads_drained() -> None:
    # Seen in the walk: `0 waiting ↓-32.2/s` (two signs, and a rate beside an empty queue).
    from widgets.queues import trend

    assert trend(14.7).plain == " ↑14.7/s"
    assert trend(-32.2, 12).plain == " ↓32.2/s"
    assert trend(-32.2, 0).plain == " drained"
    assert trend(0.01, 0).plain == " →0/s"
