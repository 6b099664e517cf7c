"""A runbook that terminates a live backend only ever does so after a confirmation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from runbooks.journal import Journal
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import (
    Outcome,
    RunContext,
    describe_action,
    execute_action,
    run_runbook,
    run_step,
)
from tests.conftest import SandboxHandle, warroom

KILLER = """---
id: killer
title: Kill a backend
severity: low
---
## Diagnosis
1. **Find the victim.** A read that returns its pid.
   ```sql target=primary id=find pass="rows == 1"
   SELECT pid FROM pg_stat_activity WHERE application_name = 'warroom-test-victim'
   ```
2. **Looks like a check, but terminates.** The author calls it a probe; the classifier does not.
   ```sql target=primary id=disguised pass="rows == 1"
   SELECT /* just looking */ pg_catalog.pg_terminate_backend ({{ steps.find.value }}) AS gone
   ```
"""


@pytest.fixture
async def victim(sandbox: SandboxHandle) -> AsyncIterator[tuple[psycopg.AsyncConnection, int]]:
    # The application's role: the operator may terminate its sessions, the read role may not.
    conn = await psycopg.AsyncConnection.connect(sandbox.app_dsn("primary"), autocommit=True, application_name="warroom-test-victim")
    pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
    yield conn, pid
    await conn.close()


def _killer() -> Runbook:
    rb, problems = parse_runbook(KILLER, "killer.md")
    assert rb is not None, problems
    assert rb.step("disguised").kind == "action"  # whatever the author wrote
    return rb


async def test_headless_and_read_only_runs_leave_the_backend_alive(sandbox: SandboxHandle, victim, tmp_path: Path) -> None:
    conn, pid = victim
    rb = _killer()
    for read_only in (False, True):
        report = await run_runbook(rb, sandbox.env, read_only=read_only)
        by_id = {o.step_id: o for o in report.outcomes}
        assert by_id["find"].status == Outcome.PASS and by_id["find"].value == pid
        assert by_id["disguised"].status == Outcome.REFUSED
        assert f"terminate backend pid {pid} on primary" in by_id["disguised"].summary
    assert (await run_step(rb.step("disguised"), sandbox.env)).status == Outcome.REFUSED
    (tmp_path / "killer.md").write_text(KILLER)
    cli = warroom("runbook", "run", str(tmp_path / "killer.md"), "--config", str(sandbox.config_path), "--read-only")
    assert "refused" in cli.stdout, cli.stdout + cli.stderr
    assert await sandbox.backend_alive(pid)
    await conn.execute("SELECT 1")  # the victim's own session still works


async def test_declined_or_read_only_action_is_not_run_and_is_journaled(sandbox: SandboxHandle, victim, tmp_path: Path) -> None:
    conn, pid = victim
    rb = _killer()
    journal = Journal(tmp_path / "j.sqlite3")
    context = RunContext(rb.id, journal=journal, incident_id=journal.start_incident(sandbox.env.name, [rb.id]))
    await run_step(rb.step("find"), sandbox.env, context=context)
    step = rb.step("disguised")
    assert describe_action(step, context, sandbox.env).startswith(f"terminate backend pid {pid} on primary (127.0.0.1:")
    declined = await execute_action(step, sandbox.env, context=context, confirmed=False, read_only=False)
    assert declined.status == Outcome.REFUSED and "declined" in declined.summary
    read_only = await execute_action(step, sandbox.env, context=context, confirmed=True, read_only=True)
    assert read_only.status == Outcome.REFUSED and "read-only" in read_only.summary
    assert await sandbox.backend_alive(pid)
    await conn.execute("SELECT 1")
    kinds = [e.kind for e in journal.events(context.incident_id)]
    assert kinds == ["probe", "action-declined", "action-declined"]


async def test_confirmed_action_terminates_the_backend(sandbox: SandboxHandle, victim, tmp_path: Path) -> None:
    conn, pid = victim
    rb = _killer()
    journal = Journal(tmp_path / "j.sqlite3")
    context = RunContext(rb.id, journal=journal, incident_id=journal.start_incident(sandbox.env.name, [rb.id]))
    # Without the read that found the pid there is nothing to fill in: refused, not guessed.
    unfilled = await execute_action(rb.step("disguised"), sandbox.env, context=RunContext(), confirmed=True, read_only=False)
    assert unfilled.status == Outcome.REFUSED and "no value yet" in unfilled.summary
    await run_step(rb.step("find"), sandbox.env, context=context)
    done = await execute_action(rb.step("disguised"), sandbox.env, context=context, confirmed=True, read_only=False)
    assert done.status == Outcome.PASS, done.summary
    assert f"terminate backend pid {pid}" in done.summary
    assert not await sandbox.backend_alive(pid)
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("SELECT 1")
    events = journal.events(context.incident_id)
    assert [e.kind for e in events] == ["probe", "action"] and events[-1].status == "pass"
