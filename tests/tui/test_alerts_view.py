"""The Alerts view: firing alerts from the real Alertmanager, Enter opens the runbook they name."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from textual.widgets import DataTable

from probes.config_sources import AlertmanagerTarget
from tests.tui import fixtures
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tests.tui.test_cockpit_sandbox import wait_until
from tui.app import make_app
from tui.scheduler import FixedSource
from tui.screens.alerts import AlertsDetail
from tui.screens.runbook import RunbookScreen


def _row_of(table: DataTable[Any], alert: str) -> int | None:
    for index in range(table.row_count):
        if table.get_row_at(index)[1] == alert:
            return index
    return None


async def test_injected_replication_lag_fires_and_enter_opens_its_runbook(prometheus_sandbox: Any) -> None:
    app = make_app(prometheus_sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot, within_s=15)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AlertsDetail)
        table = app.screen.query_one("#alerts", DataTable)
        await asyncio.to_thread(prometheus_sandbox.inject, "replication-lag")
        try:
            # The rule's `for: 2s`, 1 s scrapes and evaluations, one cockpit refresh.
            assert await wait_until(pilot, lambda: _row_of(table, "PostgresReplicationLag") is not None, 25), screen_text(app)
            row = table.get_row_at(_row_of(table, "PostgresReplicationLag") or 0)
            assert row[2:4] == ["warning", "firing"] and row[6] == "replication-lag", row
            assert "instance=primary" in row[5]
            table.move_cursor(row=_row_of(table, "PostgresReplicationLag"))
            await pilot.press("enter")
            assert await wait_until(pilot, lambda: isinstance(app.screen, RunbookScreen), 5), type(app.screen)
            assert app.screen.run.runbook.id == "replication-lag"  # type: ignore[attr-defined]
            # The alert is also one of the main screen's problems (the header's line).
            main = app.main_screen()
            assert main is not None and "alerts 1 alert firing: PostgresReplicationLag" in main.problem_line()[0]
        finally:
            await asyncio.to_thread(prometheus_sandbox.heal, "replication-lag")


def _alert(name: str, url: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "severity": "critical", "labels": {"alertname": name, "severity": "critical", **labels},
            "annotations": {"runbook_url": url}, "runbook_url": url, "starts_at": "2023-11-14T22:10:00Z",
            "state": "firing", "silenced_by": [], "inhibited_by": [], "fingerprint": name.lower()}


async def test_an_alert_naming_no_runbook_shows_its_url_and_a_mapping_resolves_one() -> None:
    wiki = "https://wiki.example/ops/Disk%20full"
    alerts = [_alert("DiskFull", wiki, instance="db1"), _alert("KubeLag", "https://runbooks.example/pg/lag")]
    result = fixtures.r("am", "alertmanager", "alerts", "fail", "am: 2 alerts firing", 2.0, source="alertmanager",
                        firing=2, firing_names=["DiskFull", "KubeLag"], count=2, alerts=alerts)
    target = AlertmanagerTarget("am", "http://127.0.0.1:9093", runbook_urls=(("https://runbooks.example/pg/lag", "replication-lag"),))
    env = dataclasses.replace(fixtures.environment(), alertmanager=(target,))
    app = make_app(env, source=FixedSource([result]), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.press("a")
        await pilot.pause()
        table = app.screen.query_one("#alerts", DataTable)
        assert [table.get_row_at(i)[6] for i in range(table.row_count)] == [wiki, "replication-lag"]
        await pilot.press("enter")  # DiskFull: no runbook matches its URL
        await pilot.pause()
        assert isinstance(app.screen, AlertsDetail)
        assert f"DiskFull: no bundled runbook matches; copied {wiki}" in screen_text(app)
        await pilot.press("down", "enter")  # KubeLag: the entry's runbook_urls maps it
        assert await wait_until(pilot, lambda: isinstance(app.screen, RunbookScreen), 5)
        assert app.screen.run.runbook.id == "replication-lag"  # type: ignore[attr-defined]


async def test_the_alerts_key_exists_only_with_an_alertmanager() -> None:
    app = make_app(fixtures.environment(), source=FixedSource([]), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        assert all(b.binding.id != "alerts.view" for b in app.screen.active_bindings.values())
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, AlertsDetail)
