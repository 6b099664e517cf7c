"""The PostgreSQL probes against the real sandbox primary + replica, and against bad targets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from probes import postgres as pg
from probes.config import PostgresTarget
from probes.result import ProbeResult, Status
from probes.thresholds import Thresholds
from tui.sandbox.base import LOOPBACK, free_port

WAIT_S = 30.0


def target(sandbox: Any, name: str) -> PostgresTarget:
    found = sandbox.env.postgres_named(name)
    assert found is not None, f"sandbox has no postgres target {name!r}"
    return found


def variant(base: PostgresTarget, *, name: str = "x", dsn: str | None = None, **changes: Any) -> PostgresTarget:
    fields = {"role": base.role, "expect_replicas": base.expect_replicas, **changes}
    return PostgresTarget(name, dsn or base.dsn, fields["role"], tuple(fields["expect_replicas"]), fields.get("action_dsn", base.action_dsn))


def by_probe(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    assert [r.probe for r in results] == list(pg.PROBES)
    return {r.probe: r for r in results}


async def poll(sandbox: Any, name: str, probe: str, until: Callable[[ProbeResult], bool], wait_s: float = WAIT_S) -> ProbeResult:
    """Collect until `until(result)` holds; fail with the last reading after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        result = by_probe(await pg.collect(target(sandbox, name), sandbox.env.thresholds, timeout=2.0))[probe]
        if until(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{name}/{probe} never reached the expected state; last: {result.status} {result.summary}")
        await asyncio.sleep(0.3)


async def pids_of(sandbox: Any, application_name: str) -> set[int]:
    async with await psycopg.AsyncConnection.connect(target(sandbox, "primary").dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))
        return {row[0] for row in await cur.fetchall()}


def is_ok(result: ProbeResult) -> bool:
    return result.status is Status.OK


# --- a healthy sandbox -----------------------------------------------------------------------


async def test_healthy_sandbox_reads_ok_everywhere(sandbox: Any) -> None:
    for name in ("primary", "replica"):
        for probe in pg.PROBES:
            await poll(sandbox, name, probe, is_ok, wait_s=15)
        results = by_probe(await pg.collect(target(sandbox, name), sandbox.env.thresholds, timeout=2.0))
        bad = {p: r.summary for p, r in results.items() if r.status is not Status.OK}
        assert not bad, bad
        conns = results["connections"].data
        assert conns["max_connections"] == 40 and 1 <= conns["total"] < 10
        assert results["connections"].value == pytest.approx(conns["total"] / 40, abs=1e-3)
        assert results["slow_statements"].data["installed"] is True
        json.dumps([r.to_json() for r in results.values()])  # everything is JSON-serialisable
    primary = by_probe(await pg.collect(target(sandbox, "primary"), sandbox.env.thresholds, timeout=2.0))
    repl = primary["replication"].data
    assert repl["role"] == "primary" and repl["missing"] == []
    assert [r["application_name"] for r in repl["replicas"]] == ["replica"]
    assert repl["replicas"][0]["state"] == "streaming"
    replica = by_probe(await pg.collect(target(sandbox, "replica"), sandbox.env.thresholds, timeout=2.0))
    assert replica["replication"].data["role"] == "replica"
    assert replica["replication"].data["is_in_recovery"] is True
    assert replica["replication"].data["replay_paused"] is False


# --- the four scenarios ----------------------------------------------------------------------


async def test_lock_contention_shows_the_chain_under_the_holder(sandbox: Any) -> None:
    with sandbox.scenario("lock-contention") as message:
        holder = int(re.search(r"lock holder pid (\d+)", message)[1])  # type: ignore[index]
        reported = {int(p) for p in re.search(r"blocked pids ([\d, ]+)", message)[1].split(",")}  # type: ignore[index]
        waiters = await pids_of(sandbox, "sandbox-lock-waiter")
        assert waiters == reported and len(waiters) == 3
        assert await pids_of(sandbox, "sandbox-lock-holder") == {holder}

        first = await poll(sandbox, "primary", "locks", lambda r: r.status is not Status.OK)
        assert first.status in (Status.WARN, Status.FAIL)
        result = await poll(sandbox, "primary", "locks", lambda r: r.status is Status.FAIL)
        assert result.value == 3
        [chain] = result.data["chains"]
        assert chain["blocker_pid"] == holder
        assert set(chain["blocked"]) == waiters
        assert chain["state"] == "idle in transaction" and "nightly batch" in chain["query"]
        assert chain["application_name"] == "sandbox-lock-holder"
        sessions = {s["pid"]: s for s in chain["blocked_sessions"]}
        assert set(sessions) == waiters
        # The chain is deeper than one level: some waiter waits on another waiter only.
        assert any(set(s["blocked_by"]) <= waiters for s in sessions.values())
        threshold = sandbox.env.thresholds.get("locks", "blocked_fail_s")
        assert result.data["max_blocked_s"] >= threshold
        conns = by_probe(await pg.collect(target(sandbox, "primary"), sandbox.env.thresholds, timeout=2.0))["connections"]
        assert conns.data["waiting"] == 3
    result = await poll(sandbox, "primary", "locks", is_ok, wait_s=10)
    assert result.value == 0 and result.data["chains"] == []


async def test_connection_exhaustion_fails_connections(sandbox: Any) -> None:
    with sandbox.scenario("connection-exhaustion"):
        result = await poll(sandbox, "primary", "connections", lambda r: r.status is Status.FAIL)
        assert result.data["total"] >= 37 and result.value >= 0.9
        assert result.data["by_state"].get("idle", 0) >= 30
        assert len(await pids_of(sandbox, "sandbox-exhaust")) >= 30
    result = await poll(sandbox, "primary", "connections", is_ok, wait_s=10)
    assert result.data["total"] < 10


async def test_idle_in_transaction_names_the_session(sandbox: Any) -> None:
    with sandbox.scenario("idle-in-transaction") as message:
        pid = int(re.search(r"pid (\d+) is idle in transaction", message)[1])  # type: ignore[index]
        result = await poll(sandbox, "primary", "idle_in_transaction", lambda r: r.status is not Status.OK)
        assert result.value == 1
        [session] = result.data["sessions"]
        assert session["pid"] == pid
        assert session["idle_s"] >= sandbox.env.thresholds.get("idle_in_transaction", "warn_s")
        assert "orders" in session["query"]
    await poll(sandbox, "primary", "idle_in_transaction", is_ok, wait_s=10)


async def test_replication_lag_on_both_sides(sandbox: Any) -> None:
    th = sandbox.env.thresholds
    with sandbox.scenario("replication-lag"):
        primary = await poll(sandbox, "primary", "replication", lambda r: r.status is Status.FAIL)
        assert primary.value >= th.get("replication", "lag_bytes_fail")
        assert primary.data["replicas"][0]["lag_bytes"] == primary.value
        replica = await poll(
            sandbox, "replica", "replication",
            lambda r: r.data.get("replay_delay_s", 0) >= th.get("replication", "replay_lag_s_warn"),
        )
        assert replica.status in (Status.WARN, Status.FAIL)
        assert replica.data["replay_paused"] is True
        assert replica.data["receive_replay_gap_bytes"] > 0
        assert replica.value == replica.data["replay_delay_s"]
    await poll(sandbox, "primary", "replication", is_ok)
    replica = await poll(sandbox, "replica", "replication", is_ok)
    assert replica.data["replay_paused"] is False


# --- bad targets -----------------------------------------------------------------------------


async def test_wrong_password_is_named_and_never_shown(sandbox: Any) -> None:
    secret = "Wr0ng-s3cret-pw"
    port = target(sandbox, "primary").address.rsplit(":", 1)[1]
    bad = variant(target(sandbox, "primary"), dsn=f"postgresql://pwuser:{secret}@{LOOPBACK}:{port}/shop")
    results = await pg.collect(bad, sandbox.env.thresholds, timeout=2.0)
    assert [r.status for r in results] == [Status.ERROR] * len(pg.PROBES)
    assert results[0].summary == "x: password authentication failed for user pwuser"
    assert secret not in json.dumps([r.to_json() for r in results])


async def test_refused_port_says_so() -> None:
    port = free_port()
    bad = PostgresTarget("db", f"postgresql://postgres@{LOOPBACK}:{port}/shop")
    started = time.monotonic()
    results = await pg.collect(bad, Thresholds(), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert {r.summary for r in results} == {f"db: connection refused at {LOOPBACK}:{port} (is PostgreSQL running?)"}


async def test_missing_database_and_role(sandbox: Any) -> None:
    base = target(sandbox, "primary")
    port = base.address.rsplit(":", 1)[1]
    [first, *_] = await pg.collect(variant(base, dsn=f"postgresql://postgres@{LOOPBACK}:{port}/nosuchdb"), sandbox.env.thresholds, timeout=2.0)
    assert first.status is Status.ERROR and first.summary == "x: database nosuchdb does not exist"
    [first, *_] = await pg.collect(variant(base, dsn=f"postgresql://ghost@{LOOPBACK}:{port}/shop"), sandbox.env.thresholds, timeout=2.0)
    assert first.summary == "x: role ghost does not exist"


@contextlib.asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()


async def test_hung_target_times_out_within_budget() -> None:
    async with silent_listener() as port:
        hung = PostgresTarget("hung", f"postgresql://postgres@{LOOPBACK}:{port}/shop")
        started = time.monotonic()
        results = await pg.collect(hung, Thresholds(), timeout=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert all(r.status is Status.ERROR for r in results)
    assert "timed out" in results[0].summary and results[0].summary.startswith("hung: ")


def test_dns_failure_message_names_the_host() -> None:
    # No DNS query may leave loopback, so the driver's message is fed to the mapper directly.
    exc = psycopg.OperationalError("failed to resolve host 'db.internal': [Errno -2] Name or service not known")
    t = PostgresTarget("db", "postgresql://app:hunter22@db.internal:5432/app")
    assert pg.describe_error(exc, t) == "cannot resolve host db.internal (DNS failure)"


async def test_missing_replica_fails_replication(sandbox: Any) -> None:
    expecting = variant(target(sandbox, "primary"), expect_replicas=("replica", "ghost"))
    result = by_probe(await pg.collect(expecting, sandbox.env.thresholds, timeout=2.0))["replication"]
    assert result.status is Status.FAIL
    assert result.data["missing"] == ["ghost"] and "ghost" in result.summary


async def test_slow_statements_with_and_without_the_extension(sandbox: Any) -> None:
    base = target(sandbox, "primary")
    port = base.address.rsplit(":", 1)[1]
    # The extension is created in the demo database only.
    bare = variant(base, dsn=f"postgresql://postgres@{LOOPBACK}:{port}/postgres")
    result = by_probe(await pg.collect(bare, sandbox.env.thresholds, timeout=2.0))["slow_statements"]
    assert result.status is Status.OK and result.data["installed"] is False
    assert result.summary == "x: pg_stat_statements not installed"
    await asyncio.sleep(1.2)  # let the sandbox's load record a few statements
    result = by_probe(await pg.collect(base, sandbox.env.thresholds, timeout=2.0))["slow_statements"]
    assert result.data["installed"] is True
    statements = result.data["statements"]
    assert statements and set(statements[0]) == {"query", "calls", "mean_ms", "total_ms"}
    assert any("orders" in s["query"] for s in statements)
    assert not any("warroom_" in s["query"] for s in statements)  # our own probe is left out


# --- read-only, sessions, budget ------------------------------------------------------------


async def test_probe_connections_are_read_only(sandbox: Any) -> None:
    primary = target(sandbox, "primary")
    with pytest.raises(pg.SqlError, match="read-only transaction"):
        await pg.run_readonly_sql(primary, "CREATE TABLE not_allowed ()", timeout=2.0)
    with pytest.raises(pg.SqlError, match="multiple commands"):
        await pg.run_readonly_sql(primary, "COMMIT; SET default_transaction_read_only = off; CREATE TABLE t ()", timeout=2.0)
    with pytest.raises(pg.SqlError, match="timed out"):
        await pg.run_readonly_sql(primary, "SELECT pg_sleep(3)", timeout=1.0)
    # warroom_read (pg_monitor) reads statistics, not the shop's tables.
    with pytest.raises(pg.SqlError, match="permission denied for table accounts"):
        await pg.run_readonly_sql(primary, "SELECT count(*) FROM accounts", timeout=2.0)
    rows = await pg.run_readonly_sql(
        primary, "SELECT count(*) AS n FROM generate_series(1, 50) g WHERE 'customer-' || g LIKE 'customer-%'", timeout=2.0)
    assert rows == [{"n": 50}]
    session = pg.Session(primary)
    try:
        results = await pg.collect(primary, sandbox.env.thresholds, timeout=2.0, session=session)
        assert all(r.status is not Status.ERROR for r in results)
        assert session.conn is not None
        cur = await session.conn.execute("SELECT current_setting('default_transaction_read_only'), current_setting('application_name')")
        assert await cur.fetchone() == ("on", "warroom")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await session.conn.execute("CREATE TABLE not_allowed ()")
    finally:
        await session.aclose()


async def test_actions_may_write(sandbox: Any) -> None:
    # The operator role may not create tables (that is the point of it): the session's mode is
    # what is tested here, so this target acts as the superuser.
    primary = variant(target(sandbox, "primary"), name="primary", action_dsn=sandbox.admin_dsn("primary"))
    try:
        assert await pg.run_action_sql(primary, "CREATE TABLE action_check (id int)", timeout=2.0) == []
        rows = await pg.run_readonly_sql(primary, "SELECT to_regclass('action_check')::text AS t", timeout=2.0)
        assert rows == [{"t": "action_check"}]
    finally:
        await pg.run_action_sql(primary, "DROP TABLE IF EXISTS action_check", timeout=2.0)


async def test_session_is_reused_reconnects_and_stays_in_budget(sandbox: Any) -> None:
    primary = target(sandbox, "primary")
    session = pg.Session(primary)
    try:
        await pg.collect(primary, sandbox.env.thresholds, timeout=2.0, session=session)
        assert session.conn is not None
        pid = session.conn.info.backend_pid
        before = await _snapshot_stats(sandbox)
        sent = session.statements
        for _ in range(30):
            await pg.collect(primary, sandbox.env.thresholds, timeout=2.0, session=session)
        assert session.conn.info.backend_pid == pid
        # One snapshot per refresh; pg_stat_statements is re-read only every PGSS_EVERY_S.
        assert session.statements - sent <= 30 + 2
        calls, total_ms = (a - b for a, b in zip(await _snapshot_stats(sandbox), before, strict=True))
        assert calls == 30
        assert total_ms / calls < 2.0, f"snapshot statement takes {total_ms / calls:.2f} ms of server time"
        # Kill the probe's backend: one refresh may fail, the next reconnects by itself.
        async with await psycopg.AsyncConnection.connect(sandbox.admin_dsn("primary"), autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(0.2)
        first = await pg.collect(primary, sandbox.env.thresholds, timeout=2.0, session=session)
        if first[0].status is Status.ERROR:
            assert first[0].summary.startswith("primary: ")
        second = await pg.collect(primary, sandbox.env.thresholds, timeout=2.0, session=session)
        assert second[0].status is not Status.ERROR, second[0].summary
        assert session.conn.info.backend_pid != pid
    finally:
        await session.aclose()


async def test_server_hanging_mid_session_times_out_then_recovers(sandbox: Any) -> None:
    primary = target(sandbox, "primary")
    session = pg.Session(primary)
    try:
        await pg.collect(primary, sandbox.env.thresholds, timeout=1.0, session=session)
        assert session.conn is not None
        pid = session.conn.info.backend_pid
        os.kill(pid, signal.SIGSTOP)  # the backend serving the probe stops answering
        try:
            started = time.monotonic()
            results = await pg.collect(primary, sandbox.env.thresholds, timeout=1.0, session=session)
            assert time.monotonic() - started < 1.5
            assert results[0].status is Status.ERROR and "timed out" in results[0].summary
        finally:
            os.kill(pid, signal.SIGCONT)
        results = await pg.collect(primary, sandbox.env.thresholds, timeout=1.0, session=session)
        assert all(r.status is not Status.ERROR for r in results), results[0].summary
        assert session.conn.info.backend_pid != pid
    finally:
        await session.aclose()


async def _snapshot_stats(sandbox: Any) -> tuple[int, float]:
    async with await psycopg.AsyncConnection.connect(target(sandbox, "primary").dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(calls), 0)::bigint, coalesce(sum(total_exec_time), 0)::float8 "
            "FROM pg_stat_statements WHERE query LIKE '%warroom\\_activity%'"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), float(row[1])
