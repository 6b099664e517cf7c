"""The incident journal: persistent, resumable, exported with timestamps and without secrets."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from probes.config import parse_config
from runbooks.journal import Journal
from runbooks.loader import find_runbook
from runbooks.runner import Outcome, RunContext, run_runbook
from tests.conftest import SandboxHandle, warroom

PASSWORD = "Sup3r-s3cret-pw"
CONFIG = f"""
[environments.broken]
timeout = 1
[[environments.broken.postgres]]
name = "primary"
dsn = "postgresql://app:{PASSWORD}@127.0.0.1:9/app"
"""
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


async def test_run_is_journaled_resumable_and_exported(sandbox: SandboxHandle, data_dir: Path) -> None:
    rb = find_runbook("lock-contention")
    journal = Journal()
    assert journal.path.parent == data_dir
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    incident = journal.start_incident(sandbox.env.name, [rb.id], title="writes hang")
    context = RunContext(rb.id, journal=journal, incident_id=incident)
    with sandbox.scenario("lock-contention"):
        await run_runbook(rb, sandbox.env, context=context)
    journal.mark(incident, rb.id, "cancel-is-safe", "fail", "payments batch, must finish")
    journal.note(incident, "paged the payments team", runbook_id=rb.id, step_id="terminate-blocker")
    journal.close()

    # A new process (a dropped SSH session) finds the same incident and its checklist state.
    again = Journal()
    last = again.last_incident()
    assert last is not None and last.id == incident and last.runbooks == (rb.id,)
    state = again.checklist_state(incident)[rb.id]
    assert state["find-blocker"].status == "fail" and "root blocker pid" in state["find-blocker"].summary
    assert state["cancel-is-safe"].status == "fail"
    assert state["terminate-blocker"].status == "refused"
    assert state["terminate-blocker"].notes == ["paged the payments team"]

    exported = again.export_json(incident)
    kinds = [e["kind"] for e in exported["events"]]
    assert kinds.count("probe") >= 3 and "manual" in kinds and "note" in kinds
    assert all(ISO.fullmatch(e["time"]) for e in exported["events"])
    assert all(e["duration_ms"] is not None for e in exported["events"] if e["kind"] == "probe")
    md = again.export_markdown(incident)
    assert "## Symptoms seen" in md and "find-blocker" in md and "root blocker pid" in md
    assert "| time (UTC) |" in md and ISO.search(md)
    again.close()

    cli_json = warroom("journal", "export", "--format", "json")
    assert cli_json.returncode == 0, cli_json.stderr
    assert json.loads(cli_json.stdout)["incident"]["id"] == incident
    out = data_dir / "timeline.md"
    cli_md = warroom("journal", "export", "--incident", str(incident), "-o", str(out))
    assert cli_md.returncode == 0 and "find-blocker" in out.read_text()
    listed = warroom("journal", "list")
    assert listed.returncode == 0 and "lock-contention" in listed.stdout
    missing = warroom("journal", "export", "--incident", "99999")
    assert missing.returncode == 2 and "no such incident" in missing.stderr


async def test_no_password_in_journal_or_export(data_dir: Path) -> None:
    env = parse_config(CONFIG, "broken.toml").environment()
    rb = find_runbook("lock-contention")
    journal = Journal()
    incident = journal.start_incident(env.name, [rb.id], title=f"db at {env.postgres[0].dsn} down")
    context = RunContext(rb.id, journal=journal, incident_id=incident)
    report = await run_runbook(rb, env, context=context)
    assert report.outcomes[0].status == Outcome.ERROR  # nothing listens on port 9
    journal.note(incident, f"tried psql {env.postgres[0].dsn} by hand; password={PASSWORD}")
    exports = json.dumps(journal.export_json(incident)) + journal.export_markdown(incident)
    assert "primary-up" in exports and "127.0.0.1" in exports
    assert PASSWORD not in exports
    raw = sqlite3.connect(journal.path).execute("SELECT group_concat(summary || data) FROM events").fetchone()[0]
    assert PASSWORD not in raw
    journal.close()
