"""The incident journal: persistent, resumable, exported with timestamps and without secrets."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from probes.config import parse_config
from runbooks.journal import Journal
from runbooks.loader import find_runbook, parse_runbook
from runbooks.runner import Outcome, RunContext, execute_action, run_runbook
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


# --- the export as a postmortem's first draft --------------------------------------------------

SECTIONS = ("## Timeline", "## Symptoms seen", "## Actions", "## Notes", "## warroom's own errors", "## Resolution")


def section(md: str, title: str) -> str:
    after = md.split(title, 1)[1]
    following = [h for h in SECTIONS if h != title and h in after]
    return after.split(following[0], 1)[0] if following else after


async def test_actions_that_could_not_run_say_why(sandbox: SandboxHandle, data_dir: Path) -> None:
    rb = find_runbook("lock-contention")
    journal = Journal()
    incident = journal.start_incident(sandbox.env.name, [rb.id], title="writes hang")
    context = RunContext(rb.id, journal=journal, incident_id=incident)
    with sandbox.scenario("lock-contention") as message:
        pid = int(re.search(r"lock holder pid (\d+)", message).group(1))  # type: ignore[union-attr]
        await run_runbook(rb, sandbox.env, context=context, read_only=False)  # headless: the terminate action is not run
        action = rb.step("terminate-blocker")
        assert action is not None
        await execute_action(action, sandbox.env, context=context, confirmed=False, read_only=False)
        await execute_action(action, sandbox.env, context=context, confirmed=True, read_only=True)
        assert await sandbox.backend_alive(pid)
    journal.close_incident(incident, "resolved", "the batch finished by itself")
    md = journal.export_markdown(incident)
    journal.close()
    actions = section(md, "## Actions")
    assert "DECLINED" not in md and "DONE" not in md and "cancel-blocker" not in actions  # off the path: nothing to say
    assert f"`terminate-blocker` not run: headless: terminate backend pid {pid} on primary" in actions, actions
    assert f"`terminate-blocker` not run: declined by the operator: terminate backend pid {pid} on primary" in actions
    assert f"`terminate-blocker` not run: read-only mode: terminate backend pid {pid} on primary" in actions
    # The blocker found by the steps is a symptom; the declined action is not.
    symptoms = section(md, "## Symptoms seen")
    assert "lock-contention step find-blocker" in symptoms and "terminate-blocker" not in symptoms
    assert [md.index(h) for h in SECTIONS] == sorted(md.index(h) for h in SECTIONS)
    assert section(md, "## Resolution").strip() == "the batch finished by itself"


OWN = """---
id: own-errors
title: own errors
severity: low
---
# own errors

1. **A condition that cannot be evaluated.**
   ```probe
   id: bad-condition
   target: primary
   probe: connections
   pass: "int(summary) > 0"
   ```
2. **A template whose value is missing.**
   ```sql target=primary id=bad-template
   SELECT {{ steps.nowhere.value }} AS n
   ```
"""


async def test_warroom_own_errors_are_kept_apart_from_symptoms(sandbox: SandboxHandle, data_dir: Path) -> None:
    rb, problems = parse_runbook(OWN, "own.md")
    assert rb is not None, problems
    journal = Journal()
    incident = journal.start_incident(sandbox.env.name, [rb.id])
    await run_runbook(rb, sandbox.env, context=RunContext(rb.id, journal=journal, incident_id=incident))
    # And a target that is really down: that one is a symptom.
    down = parse_config(CONFIG, "broken.toml").environment()
    lock = find_runbook("lock-contention")
    await run_runbook(lock, down, context=RunContext(lock.id, journal=journal, incident_id=incident))
    md = journal.export_markdown(incident)
    journal.close()
    own, symptoms = section(md, "## warroom's own errors"), section(md, "## Symptoms seen")
    assert "`bad-condition`" in own and "condition could not be evaluated" in own
    assert "`bad-template`" in own and "cannot fill the command" in own
    assert "bad-condition" not in symptoms and "bad-template" not in symptoms
    assert "lock-contention step primary-up" in symptoms and "connection refused" in symptoms
    assert "primary-up" not in own
    assert "not closed yet: `warroom journal close" in section(md, "## Resolution")
