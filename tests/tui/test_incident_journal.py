"""The cockpit's incident: opened at the first alarm with that reading, symptoms' first and last
sighting, closed with a one-line resolution by a key; exported as a postmortem's first draft."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from probes.result import ProbeResult, Status
from runbooks.journal import Journal
from tests.conftest import SandboxHandle, warroom
from tests.tui import fixtures
from tests.tui.conftest import incident_app, main_screen_settled
from tests.tui.test_runbook_ui import until
from tui.app import make_app
from tui.scheduler import FixedSource
from tui.screens.close_incident import CloseIncident


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def healthy() -> list[ProbeResult]:
    return [fixtures.r("api", "http", "http", "ok", "api: HTTP 200 in 35 ms", 35.0, status_code=200, latency_ms=35.0)]


async def test_no_alarm_no_incident_and_the_key_says_so(data_dir: Path) -> None:
    app = make_app(fixtures.environment(), source=FixedSource(healthy()), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.pause(0.2)
        assert app.incident is None  # nothing is wrong: the journal is not even opened
        await pilot.press("i")
        await pilot.pause()
        assert not isinstance(app.screen, CloseIncident)
        assert any("no incident is open" in n.message for n in app._notifications)
    assert not (data_dir / "journal.sqlite3").exists()


async def test_first_alarm_opens_the_incident_and_i_closes_it_with_a_resolution(data_dir: Path) -> None:
    source = FixedSource(healthy())
    app = make_app(fixtures.environment(), source=source, clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        failing = fixtures.r("api", "http", "http", "fail", "api: HTTP 503 (expected 200) · upstream: failing", 12.0,
                             fixtures.NOW + 1, status_code=503)
        source.push([failing])
        await until(pilot, lambda: app.incident is not None and app.incident.incident_id is not None, what="the incident")
        incident_id = app.incident.incident_id
        # A warroom bug is not a symptom and does not retitle the incident.
        source.push([ProbeResult("redis", "redis", "queues", Status.ERROR, "redis: KeyError: 'depth'", None, {}, 1.0, fixtures.NOW + 2)])
        source.push([fixtures.r("api", "http", "http", "ok", "api: HTTP 200 in 30 ms", 30.0, fixtures.NOW + 3, status_code=200)])
        await pilot.pause(0.3)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, CloseIncident), what="the close dialog")
        await pilot.press("enter")  # an empty resolution is refused, the dialog stays
        await pilot.pause()
        assert isinstance(app.screen, CloseIncident)
        await pilot.press(*"upstream restarted", "enter")
        await until(pilot, lambda: not isinstance(app.screen, CloseIncident), what="the dialog to close")
        assert app.incident.incident_id is None
    with Journal() as journal:
        incident = journal.incident(incident_id)
        assert incident is not None and incident.status == "resolved" and incident.resolution == "upstream restarted"
        assert incident.title == "api: HTTP 503 (expected 200) · upstream: failing"
        assert incident.started_at == fixtures.NOW + 1  # the alarm's reading, not when a runbook opened
        kinds = [(e.kind, e.status) for e in journal.events(incident_id)]
        assert kinds == [("symptom", "fail"), ("warroom-error", "error"), ("symptom-end", "cleared"), ("run", "closed")], kinds
        md = journal.export_markdown(incident_id)
    symptoms = md.split("## Symptoms seen")[1].split("## Actions")[0]
    own = md.split("## warroom's own errors")[1].split("## Resolution")[0]
    assert "api http" in symptoms and "(cleared)" in symptoms and "KeyError" not in symptoms
    assert "KeyError" in own and md.rstrip().endswith("upstream restarted")


async def test_escape_keeps_the_incident_open_and_exit_records_what_is_still_seen(data_dir: Path) -> None:
    app = incident_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await until(pilot, lambda: app.incident is not None and app.incident.incident_id is not None, what="the incident")
        incident_id = app.incident.incident_id
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, CloseIncident), what="the close dialog")
        await pilot.press("escape")
        await pilot.pause()
        assert app.incident.incident_id == incident_id
    with Journal() as journal:
        incident = journal.incident(incident_id)
        assert incident is not None and incident.open
        events = journal.events(incident_id)
    seen = {e.data["where"] for e in events if e.kind == "symptom"}
    # Every reading of the fixture that is not ok, once each, not once per refresh.
    wrong = {f"{r.target} {r.probe}" for r in fixtures.incident_results() if r.status is not Status.OK}
    assert seen == wrong and len([e for e in events if e.kind == "symptom"]) == len(wrong)
    assert {e.data["where"] for e in events if e.kind == "symptom-end" and e.status == "still seen at exit"} == wrong


async def test_live_sandbox_alarm_to_resolution_through_the_cli(sandbox: SandboxHandle, data_dir: Path) -> None:
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.store.reading(("http", "api", "http")) is not None, timeout=30, what="a first reading")
        await asyncio.to_thread(sandbox.inject, "error-spike")
        try:
            await until(pilot, lambda: app.incident is not None and app.incident.incident_id is not None, timeout=30,
                        what="the incident")
            with Journal() as journal:
                await until(pilot, lambda: any(e.kind == "symptom" and e.data.get("where") == "api http"
                                               for e in journal.events(app.incident.incident_id)), timeout=30, what="api's symptom")
        finally:
            await asyncio.to_thread(sandbox.heal, "error-spike")
        incident_id = app.incident.incident_id
        with Journal() as journal:
            await until(pilot, lambda: any(e.kind == "symptom-end" and e.data.get("where") == "api http"
                                           for e in journal.events(incident_id)), timeout=30, what="api to clear")
    with Journal() as journal:
        incident = journal.incident(incident_id)
        assert incident is not None and incident.open and incident.title
        api = next(e for e in journal.events(incident_id) if e.kind == "symptom" and e.data.get("where") == "api http")
    assert api.status == "fail" and "upstream: failing" in api.summary
    closed = warroom("journal", "close", "--resolution", "upstream fixed; 503s stopped at 10:42")
    assert closed.returncode == 0 and f"closed incident {incident_id}" in closed.stdout, closed.stderr
    again = warroom("journal", "close", str(incident_id), "--resolution", "twice")
    assert again.returncode == 2 and "already closed" in again.stderr and "Traceback" not in again.stderr
    exported = warroom("journal", "export", "--incident", str(incident_id))
    assert exported.returncode == 0, exported.stderr
    md = exported.stdout
    order = [md.index(h) for h in ("## Timeline", "## Symptoms seen", "## Actions", "## Notes", "## warroom's own errors", "## Resolution")]
    assert order == sorted(order)
    assert "| api http | fail |" in md and "(cleared)" in md and "upstream fixed; 503s stopped at 10:42" in md


def test_journal_close_bad_input_is_one_message_and_status_2(data_dir: Path) -> None:
    nothing = warroom("journal", "close", "--resolution", "done")
    assert nothing.returncode == 2 and "no open incident" in nothing.stderr
    missing = warroom("journal", "close", "42", "--resolution", "done")
    assert missing.returncode == 2 and "incident 42: no such incident" in missing.stderr
    with Journal() as journal:
        journal.start_incident("lab", title="api down")
    blank = warroom("journal", "close", "--resolution", "   ")
    assert blank.returncode == 2 and "--resolution" in blank.stderr
    no_text = warroom("journal", "close")
    assert no_text.returncode == 2 and "--resolution" in no_text.stderr
    for result in (nothing, missing, blank, no_text):
        assert "Traceback" not in result.stderr
    listed = warroom("journal", "list")
    assert listed.returncode == 0 and "open" in listed.stdout and "api down" in listed.stdout


async def test_resume_reopens_a_closed_incident(data_dir: Path) -> None:
    with Journal() as journal:
        incident_id = journal.start_incident("sandbox", ["lock-contention"], title="writes hang")
        journal.close_incident(incident_id, "resolved", "too early")
    app = incident_app(resume=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.incident is not None and app.incident.incident_id == incident_id, what="the resumed incident")
    with Journal() as journal:
        incident = journal.incident(incident_id)
        events = journal.events(incident_id)
    assert incident is not None and incident.open and incident.resolution == ""
    assert any(e.status == "reopened" and "too early" in e.summary for e in events)
