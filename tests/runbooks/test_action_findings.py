"""Actions act on what the diagnosis found: `| pids` templates, counted confirmations, one connection per target.

The sandbox tests walk the bundled connection-pool-exhausted runbook in connection-exhaustion:
the terminate action names exactly the idle sessions step 4 listed, its preview counts them on
the read connection, confirmed it terminates those and no other, and the headless walk holds
one connection to the primary for all its steps (the cockpit's share the probes': tests/tui/
test_shared_connection.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import psycopg
import pytest

from probes import postgres as pg
from runbooks.conditions import MAX_PIDS, EvalError, NothingToDo, render, template_fields
from runbooks.loader import find_runbook
from runbooks.preview import (
    ActionPreview,
    listed_pids,
    over_activity,
    preview_sql,
    session_predicate,
)
from runbooks.runner import (
    Outcome,
    RunContext,
    StepOutcome,
    describe_action,
    execute_action,
    preview_action,
    run_runbook,
    run_step,
)
from runbooks.sessions import WalkSessions
from tests.conftest import SandboxHandle

HOARDERS = "terminate-idle-hoarders"
TEMPLATE = "ARRAY[{{ steps.top_holders.data.rows | pids }}]"
WAIT_S = 20.0


def names(rows: Any) -> dict[str, Any]:
    return {"steps": {"top-holders": {"data": {"rows": rows}}}}


# --- the `pids` filter ---------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "filled"), [
    ([{"pids": [4711, 4712, "4713"]}], "ARRAY[4711, 4712, 4713]"),
    ([{"pid": 4711}, {"pid": 4712}], "ARRAY[4711, 4712]"),
    ([4711, 4711, 4712], "ARRAY[4711, 4712]"),  # a pid listed twice is signalled once
    ({"pids": [99]}, "ARRAY[99]"),
    ([{"pids": None}, {"pids": [7]}], "ARRAY[7]"),  # array_agg over no idle session is NULL
], ids=["pids-column", "pid-rows", "bare-pids", "one-row", "null-group"])
def test_pids_fills_only_the_pids_found(rows: Any, filled: str) -> None:
    assert render(TEMPLATE, names(rows)) == filled


@pytest.mark.parametrize("rows", [[], [{"pids": None}], [{"pids": []}]], ids=["no-rows", "null", "empty"])
def test_an_empty_finding_is_nothing_to_do(rows: Any) -> None:
    with pytest.raises(NothingToDo, match=r"^nothing to do: the previous step found no sessions$"):
        render(TEMPLATE, names(rows))


@pytest.mark.parametrize("rows", [
    [{"pids": ["1); SELECT pg_terminate_backend(1"]}], [{"pids": [True]}], [{"pids": [0]}], [{"pids": [-5]}],
    [{"pids": [2**31]}], [{"pids": [1.5]}], [{"pids": "4711"}], "4711", 4711, [[4711]], [{"pid": "x"}],
    [{"application_name": "x"}], [{"pid": None}],
], ids=["injection", "bool", "zero", "negative", "over-int4", "float", "string-list", "string", "int", "nested", "bad-pid",
        "no-pid", "null-pid"])
def test_pids_lets_only_integers_through(rows: Any) -> None:
    with pytest.raises(EvalError) as caught:
        render(TEMPLATE, names(rows))
    assert not isinstance(caught.value, NothingToDo)


def test_pids_is_bounded_and_a_missing_step_is_not_an_empty_finding() -> None:
    with pytest.raises(EvalError, match=f"more than {MAX_PIDS} sessions"):
        render(TEMPLATE, names([{"pids": list(range(1, MAX_PIDS + 2))}]))
    assert render(TEMPLATE, names([{"pids": list(range(1, MAX_PIDS + 1))}])).count(",") == MAX_PIDS - 1
    with pytest.raises(EvalError, match="no value yet") as caught:  # the step has not run
        render(TEMPLATE, {"steps": {}})
    assert not isinstance(caught.value, NothingToDo)
    assert [f.filter for f in template_fields(TEMPLATE)] == ["pids"]


# --- reading an action's predicate ---------------------------------------------------------


def test_the_predicate_of_a_session_action_is_read_as_written() -> None:
    sql = ("SELECT pid, pg_terminate_backend(pid) AS t FROM pg_stat_activity "
           "WHERE pid = ANY (ARRAY[1, 2]::int[]) AND state = 'idle';")
    assert session_predicate(sql) == "pid = ANY (ARRAY[1, 2]::int[]) AND state = 'idle'"
    assert over_activity(sql) and listed_pids([]) == []
    assert session_predicate("SELECT pg_cancel_backend(4711)") == "pid IN (4711)"
    assert not over_activity("SELECT pg_cancel_backend(4711)")
    assert session_predicate("SELECT pid, pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = 3") == "pid = 3"


@pytest.mark.parametrize("sql", [
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity a WHERE a.pid = 1",  # alias
    "SELECT pg_terminate_backend(leader_pid) FROM pg_stat_activity WHERE pid = 1",  # another session
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = 1 UNION SELECT pg_terminate_backend(2)",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity JOIN pg_locks USING (pid) WHERE granted",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",  # every session: never counted as "these"
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = 1; SELECT 1",
    "SELECT pg_reload_conf()",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE 'unterminated",
], ids=["alias", "other-column", "union", "join", "no-where", "two-statements", "no-signal", "undecodable"])
def test_shapes_not_understood_are_not_counted(sql: str) -> None:
    assert session_predicate(sql) is None


def test_a_preview_is_only_a_plain_read() -> None:
    assert preview_sql("pid = ANY (ARRAY[1, 2]::int[]) AND state = 'idle'") is not None
    # The predicate of the preview must itself be harmless: a signal hidden in it is not run.
    assert preview_sql("pid = 1 OR pg_terminate_backend(2)") is None
    assert preview_sql("pid = 1 FOR UPDATE") is None


def test_the_confirmation_lists_the_first_few_and_how_many_more() -> None:
    preview = ActionPreview("terminate 36 sessions on primary (127.0.0.1:5432)",
                            tuple(f"{4711 + i} sandbox-exhaust (shop) idle 2m08s from 127.0.0.1" for i in range(36)), 36)
    assert preview.what.startswith("terminate 36 sessions on primary (127.0.0.1:5432): 4711 sandbox-exhaust")
    assert preview.what.endswith("and 33 more")
    lines = preview.lines(5)
    assert len(lines) == 6 and lines[0].startswith("4711 ") and lines[-1] == "... and 31 more"


# --- against the sandbox ---------------------------------------------------------------------


async def warroom_sessions(sandbox: SandboxHandle) -> int:
    """warroom's own connections to the primary (probes and reads; actions are warroom-action)."""
    async with await psycopg.AsyncConnection.connect(sandbox.admin_dsn(), autocommit=True) as admin:
        cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'warroom'")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def culprits(sandbox: SandboxHandle) -> set[int]:
    async with await psycopg.AsyncConnection.connect(sandbox.admin_dsn(), autocommit=True) as admin:
        cur = await admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'sandbox-exhaust' AND state = 'idle'")
        return {int(r[0]) for r in await cur.fetchall()}


async def test_a_session_read_shares_the_probe_connection_read_only_and_bounded(sandbox: SandboxHandle) -> None:
    primary = next(t for t in sandbox.env.postgres if t.name == "primary")
    session = pg.Session(primary)
    try:
        # Connected by a probe round of 1.5 s: the session's own statement_timeout is about 1 s.
        await pg.collect(primary, sandbox.env.thresholds, timeout=1.5, session=session)
        assert session.conn is not None
        probe_pid = session.conn.info.backend_pid
        # Probe rounds and reads interleave on one connection, serialised by the session's lock.
        results, rows = await asyncio.gather(
            pg.collect(primary, sandbox.env.thresholds, timeout=5.0, session=session),
            pg.run_readonly_sql(primary, "SELECT pg_backend_pid() AS pid, current_setting('transaction_read_only') AS ro",
                                timeout=5.0, session=session),
        )
        assert all(r.status != "error" for r in results), [r.summary for r in results]
        assert rows == [{"pid": probe_pid, "ro": "on"}]
        with pytest.raises(pg.SqlError, match="read-only"):
            await pg.run_readonly_sql(primary, "CREATE TABLE not_here ()", timeout=5.0, session=session)
        with pytest.raises(pg.SqlError):  # one statement only, as on a connection of its own
            await pg.run_readonly_sql(primary, "SELECT 1; SELECT 2", timeout=5.0, session=session)
        # The step's own timeout, not the probes' (about 1 s here).
        slept = await pg.run_readonly_sql(primary, "SELECT 1 AS slept FROM pg_sleep(1.5)", timeout=5.0, session=session)
        assert slept == [{"slept": 1}]
        started = time.monotonic()
        with pytest.raises(pg.SqlError, match="timed out|statement_timeout"):
            await pg.run_readonly_sql(primary, "SELECT pg_sleep(10)", timeout=1.0, session=session)
        assert time.monotonic() - started < 3.0
        # Nothing of the read lingers: no open transaction, no step timeout; probes go on.
        after = await pg.collect(primary, sandbox.env.thresholds, timeout=5.0, session=session)
        assert all(r.status != "error" for r in after), [r.summary for r in after]
        assert session.conn is not None and session.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        setting = await pg.run_readonly_sql(primary, "SELECT current_setting('statement_timeout') AS t", timeout=5.0, session=session)
        assert 3000 <= int(setting[0]["t"].removesuffix("ms")) <= 4000, setting  # this read's own, for its transaction
        assert session.reads >= 5
    finally:
        await session.aclose()


async def test_connection_exhaustion_terminates_exactly_the_culprits(sandbox: SandboxHandle) -> None:
    rb = find_runbook("connection-pool-exhausted")
    before = await warroom_sessions(sandbox)
    # An idle session of the same user that step 4 will not list (opened first: once the
    # scenario is in, the application role gets no slot).
    bystander = await psycopg.AsyncConnection.connect(sandbox.app_dsn(), autocommit=True, application_name="bystander")
    try:
        await exhaust_and_terminate(sandbox, rb, before, bystander)
    finally:
        await bystander.close()


async def exhaust_and_terminate(sandbox: SandboxHandle, rb: Any, before: int, bystander: psycopg.AsyncConnection[Any]) -> None:
    with sandbox.scenario("connection-exhaustion"):
        wanted = await culprits(sandbox)
        assert len(wanted) >= 30, wanted
        counts: list[int] = []

        async def count(_: Any) -> None:
            counts.append(await warroom_sessions(sandbox))

        context = RunContext(rb.id)
        report = await run_runbook(rb, sandbox.env, context=context, on_outcome=count)
        steps = {o.step_id: o for o in report.outcomes}
        assert steps["top-holders"].status == Outcome.FAIL, steps["top-holders"].summary
        assert set(steps["top-holders"].data["rows"][0]["pids"]) == wanted
        # Headless: the walk held ONE connection to the primary for all its reads, not one per step.
        assert counts and max(counts) - before <= 1, (before, counts)
        assert max(counts) - before == 1, (before, counts)  # and it was counted while open
        assert await warroom_sessions(sandbox) == before  # closed with the walk
        refused = steps[HOARDERS]
        assert refused.status == Outcome.REFUSED
        assert re.search(rf"would terminate up to {len(wanted)} sessions on primary \(127\.0\.0\.1:\d+\) \(pids \d+", refused.summary), refused.summary

        # The confirmation's count: the same predicate as a plain read, on the read connection.
        action = rb.step(HOARDERS)
        assert action is not None
        preview = await preview_action(action, context, sandbox.env)
        assert preview is not None and preview.count == len(wanted), preview
        assert preview.headline.startswith(f"terminate {len(wanted)} sessions on primary (127.0.0.1:")
        lines = preview.lines()
        assert len(lines) == 6 and lines[-1] == f"... and {len(wanted) - 5} more", lines
        assert all(re.match(r"\d+ sandbox-exhaust \(shop\) idle \d", line) for line in lines[:5]), lines
        assert {int(line.split()[0]) for line in lines[:5]} <= wanted

        done = await execute_action(action, sandbox.env, context=context, confirmed=True, read_only=False)
        assert done.status == Outcome.PASS, done.summary
        assert done.summary.endswith(f": {len(wanted)} of {len(wanted)} sessions terminated"), done.summary
        assert {r["pid"] for r in done.data["rows"]} == wanted
        for pid in wanted:
            assert not await sandbox.backend_alive(pid), pid
        # The idle session of the same user that step 4 did not list is left alone.
        assert (await (await bystander.execute("SELECT 1")).fetchone()) == (1,)

        # Now the finding is empty: the action refuses instead of running.
        found = await run_step(rb.step("top-holders"), sandbox.env, context=context)  # type: ignore[arg-type]
        assert found.status == Outcome.PASS, found.summary
        with pytest.raises(NothingToDo, match="nothing to do: the previous step found no sessions"):
            describe_action(action, context, sandbox.env)
        again = await execute_action(action, sandbox.env, context=context, confirmed=True, read_only=False)
        assert again.status == Outcome.REFUSED and again.summary == "refused: nothing to do: the previous step found no sessions"


async def test_a_preview_of_sessions_gone_since_the_diagnosis_is_nothing_to_do(sandbox: SandboxHandle) -> None:
    rb = find_runbook("connection-pool-exhausted")
    action = rb.step(HOARDERS)
    assert action is not None
    context = RunContext(rb.id)
    gone = await psycopg.AsyncConnection.connect(sandbox.app_dsn(), autocommit=True, application_name="sandbox-gone")
    pid = gone.info.backend_pid
    await gone.close()
    assert not await sandbox.backend_alive(pid)

    context.outcomes["top-holders"] = StepOutcome("top-holders", Outcome.FAIL, "", data={"rows": [{"pids": [pid]}]})
    context.sessions = sessions = WalkSessions()
    try:
        with pytest.raises(NothingToDo, match="no session it names is still there"):
            await preview_action(action, context, sandbox.env)
    finally:
        await sessions.aclose()
