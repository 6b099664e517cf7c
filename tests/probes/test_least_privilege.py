"""The second lock, live: warroom's read role cannot change the sandbox even when the classifier
is bypassed; actions run with their own credential, and a target without one runs none."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from probes import postgres as pg
from probes.config import Environment, PostgresTarget, parse_config
from runbooks.commands import redis_call
from runbooks.conditions import EvalError
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import Outcome, RunContext, describe_action, execute_action, run_step
from tests.conftest import SandboxHandle, warroom

DENIED = "permission denied"

KILLER = """---
id: lp-killer
title: Terminate the victim
severity: low
---
1. **Find the victim.**
   ```sql target=primary id=find pass="rows == 1"
   SELECT pid FROM pg_stat_activity WHERE application_name = 'warroom-lp-victim'
   ```
2. **Terminate it.**
   ```sql target=primary id=kill
   SELECT pg_terminate_backend({{ steps.find.value }})
   ```
"""

# Statements that change server state, each run as the read role with the classifier out of the
# way; what the server must answer. `pg_promote(false)`: should it ever succeed, it does not wait.
PRIMARY_STATEMENTS = [
    "SELECT pg_reload_conf()",
    "SELECT pg_stat_reset()",
    "SELECT pg_stat_statements_reset()",
    "SELECT pg_create_physical_replication_slot('warroom_lp_slot')",
]
REPLICA_STATEMENTS = ["SELECT pg_promote(false)", "SELECT pg_wal_replay_pause()", *PRIMARY_STATEMENTS[:2]]


def target(sandbox: SandboxHandle, name: str) -> PostgresTarget:
    found = sandbox.env.postgres_named(name)
    assert found is not None
    return found


def with_postgres(env: Environment, **changes: Any) -> Environment:
    """The environment with every PostgreSQL target changed the same way."""
    return dataclasses.replace(env, postgres=tuple(dataclasses.replace(t, **changes) for t in env.postgres))


@pytest.fixture
async def victim(sandbox: SandboxHandle) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], int]]:
    """A session of the shop's application role (neither warroom role)."""
    conn = await psycopg.AsyncConnection.connect(sandbox.app_dsn("primary"), autocommit=True, application_name="warroom-lp-victim")
    pid = conn.info.backend_pid
    yield conn, pid
    await conn.close()


async def direct(dsn: str, sql: str) -> None:
    """`sql` on a plain read-write session of `dsn`: no classifier, no read-only transaction."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        await conn.execute(sql)


def killer() -> Runbook:
    rb, problems = parse_runbook(KILLER, "lp-killer.md")
    assert rb is not None, problems
    assert rb.step("kill").kind == "action"
    return rb


# --- the read role, classifier bypassed ---------------------------------------------------------


async def test_read_role_cannot_terminate_or_cancel_another_session(sandbox: SandboxHandle, victim: Any) -> None:
    conn, pid = victim
    primary = target(sandbox, "primary")
    for verb in ("pg_terminate_backend", "pg_cancel_backend"):
        with pytest.raises(pg.SqlError, match=DENIED):
            await pg.run_readonly_sql(primary, f"SELECT {verb}({pid})", timeout=5.0)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await direct(primary.dsn, f"SELECT {verb}({pid})")
    assert await sandbox.backend_alive(pid)
    await conn.execute("SELECT 1")  # and its session still works


async def test_read_role_cannot_promote_the_replica_or_change_either_server(sandbox: SandboxHandle) -> None:
    for name, statements in (("primary", PRIMARY_STATEMENTS), ("replica", REPLICA_STATEMENTS)):
        server = target(sandbox, name)
        for sql in statements:
            with pytest.raises(pg.SqlError, match=DENIED):
                await pg.run_readonly_sql(server, sql, timeout=5.0)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await direct(server.dsn, sql)
    replica = target(sandbox, "replica")
    assert await pg.run_readonly_sql(replica, "SELECT pg_is_in_recovery() AS r, pg_get_wal_replay_pause_state() AS s") == [
        {"r": True, "s": "not paused"}]
    slots = await pg.run_readonly_sql(target(sandbox, "primary"), "SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = 'warroom_lp_slot'")
    assert slots == [{"n": 0}]


async def test_probes_and_reads_see_everything_as_the_read_role(sandbox: SandboxHandle, victim: Any) -> None:
    _, pid = victim
    primary = target(sandbox, "primary")
    who = await pg.run_readonly_sql(primary, "SELECT current_user AS u, pg_has_role('pg_monitor', 'USAGE') AS monitor")
    assert who == [{"u": "warroom_read", "monitor": True}]
    # Another role's session, with its query text (pg_read_all_stats, part of pg_monitor).
    [row] = await pg.run_readonly_sql(primary, f"SELECT usename, query FROM pg_stat_activity WHERE pid = {pid}")
    assert row["usename"] == "shop" and row["query"] != "<insufficient privilege>"
    assert await pg.read_role_risk(primary) is None


# --- actions: their own credential ---------------------------------------------------------------


async def test_confirmed_action_runs_with_the_operator_credential(sandbox: SandboxHandle, victim: Any) -> None:
    conn, pid = victim
    rb = killer()
    context = RunContext(rb.id)
    assert (await run_step(rb.step("find"), sandbox.env, context=context)).value == pid
    # The same action with the read role as its credential: the server refuses it.
    as_reader = with_postgres(sandbox.env, action_dsn=target(sandbox, "primary").dsn)
    denied = await execute_action(rb.step("kill"), as_reader, context=context, confirmed=True, read_only=False)
    assert denied.status == Outcome.ERROR and DENIED in denied.summary, denied.summary
    assert await sandbox.backend_alive(pid)
    done = await execute_action(rb.step("kill"), sandbox.env, context=context, confirmed=True, read_only=False)
    assert done.status == Outcome.PASS, done.summary
    assert not await sandbox.backend_alive(pid)
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("SELECT 1")
    operator = target(sandbox, "primary").action_dsn
    assert operator and operator not in json.dumps(done.to_json()) and "warroom_operator" in operator


async def test_operator_resumes_replay_on_the_replica(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("replication-lag"):
        replica = target(sandbox, "replica")
        [before] = await pg.run_readonly_sql(replica, "SELECT pg_get_wal_replay_pause_state() AS s")
        assert before["s"] in ("paused", "pause requested")
        assert await pg.run_action_sql(replica, "SELECT pg_wal_replay_resume()") == [{"pg_wal_replay_resume": ""}]
        assert await pg.run_readonly_sql(replica, "SELECT pg_get_wal_replay_pause_state() AS s") == [{"s": "not paused"}]


async def test_target_without_action_credential_refuses_before_any_confirmation(sandbox: SandboxHandle, victim: Any) -> None:
    conn, pid = victim
    rb = killer()
    context = RunContext(rb.id)
    await run_step(rb.step("find"), sandbox.env, context=context)
    bare = with_postgres(sandbox.env, action_dsn="")
    with pytest.raises(EvalError, match="primary: no action credential: set action_dsn or action_dsn_env"):
        describe_action(rb.step("kill"), context, bare)
    refused = await execute_action(rb.step("kill"), bare, context=context, confirmed=True, read_only=False)
    assert refused.status == Outcome.REFUSED
    assert refused.summary == "refused: primary: no action credential: set action_dsn or action_dsn_env on this target"
    with pytest.raises(pg.SqlError, match="^primary: no action credential: set action_dsn or action_dsn_env on this target$"):
        await pg.run_action_sql(bare.postgres[0], f"SELECT pg_terminate_backend({pid})")
    # Named in the config, but the variable is not set: the variable is what to set.
    unset = with_postgres(sandbox.env, action_dsn="", action_dsn_env="WARROOM_LP_UNSET")
    refused = await execute_action(rb.step("kill"), unset, context=context, confirmed=True, read_only=False)
    assert refused.status == Outcome.REFUSED and "environment variable WARROOM_LP_UNSET (action_dsn_env) is not set" in refused.summary
    assert await sandbox.backend_alive(pid)
    await conn.execute("SELECT 1")


async def test_redis_reads_with_the_read_user_and_acts_only_with_action_url(sandbox: SandboxHandle) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import NoPermissionError

    cache = sandbox.env.redis[0]
    assert cache.action_url and cache.url != cache.action_url
    key = f"warroom-lp:{os.getpid()}"
    assert isinstance((await redis_call(cache, (), "DBSIZE", 5.0))["value"], int)
    # The read user cannot write, with the classifier out of the way.
    reader = aioredis.from_url(cache.url)
    try:
        with pytest.raises(NoPermissionError):
            await reader.set(key, "x")
        with pytest.raises(NoPermissionError):
            await reader.execute_command("CONFIG", "SET", "timeout", "5")
    finally:
        await reader.aclose()
    # An action connects with action_url: the read user's URL there is refused by the server...
    with pytest.raises(NoPermissionError):
        await redis_call(dataclasses.replace(cache, action_url=cache.url), (), f"SET {key} x", 5.0, read=False)
    # ... no action_url at all is refused before connecting ...
    with pytest.raises(PermissionError, match="^redis: no action credential: set action_url or action_url_env on this target$"):
        await redis_call(dataclasses.replace(cache, action_url=""), (), f"SET {key} x", 5.0, read=False)
    assert (await redis_call(cache, (), f"EXISTS {key}", 5.0))["value"] == 0
    # ... and the sandbox's action_url may act.
    try:
        await redis_call(cache, (), f"SET {key} x", 5.0, read=False)
        assert (await redis_call(cache, (), f"EXISTS {key}", 5.0))["value"] == 1
    finally:
        await redis_call(cache, (), f"DEL {key}", 5.0, read=False)


# --- `warroom check` warns about a powerful read role ---------------------------------------------


def config_with(sandbox: SandboxHandle, tmp_path: Path, dsns: dict[str, str]) -> Path:
    """The sandbox's own config with the PostgreSQL targets' `dsn` replaced."""
    text = sandbox.config_path.read_text()
    for name, dsn in dsns.items():
        current = target(sandbox, name).dsn
        assert text.count(f'"{current}"') == 1
        text = text.replace(f'"{current}"', f'"{dsn}"')
    path = tmp_path / "warroom.toml"
    path.write_text(text)
    env = parse_config(text, path).environment()
    assert {t.name: t.dsn for t in env.postgres if t.name in dsns} == dsns
    return path


def warnings_of(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def test_check_warns_once_per_target_whose_read_role_is_powerful(sandbox: SandboxHandle, tmp_path: Path) -> None:
    superuser = config_with(sandbox, tmp_path, {"primary": sandbox.admin_dsn("primary"), "replica": sandbox.admin_dsn("replica")})
    result = warroom("check", "--json", "--config", str(superuser))
    assert result.returncode in (0, 1), result.stderr
    assert isinstance(json.loads(result.stdout), list)  # stdout stays one JSON array
    assert warnings_of(result) == [
        "warning: primary: probes connect as superuser 'postgres'; grant pg_monitor to a login role instead, see README",
        "warning: replica: probes connect as superuser 'postgres'; grant pg_monitor to a login role instead, see README",
    ]
    signaller = config_with(sandbox, tmp_path, {"primary": target(sandbox, "primary").action_dsn})
    result = warroom("check", "--config", str(signaller))
    assert warnings_of(result) == [
        "warning: primary: probes connect as 'warroom_operator', which may signal other backends (pg_signal_backend); "
        "use a role with pg_monitor only, see README"
    ], result.stderr
    assert "STATUS" in result.stdout
    own = warroom("check", "--config", str(sandbox.config_path))
    assert warnings_of(own) == [] and "warning" not in own.stderr, own.stderr
    for password in (t.dsn.split(":")[2].split("@")[0] for t in sandbox.env.postgres):
        assert password not in result.stdout + result.stderr + own.stdout + own.stderr


def test_readme_gives_the_roles_the_sandbox_uses() -> None:
    """The README's statements and ACL are the ones these tests prove, word for word."""
    from tui.sandbox.postgres import role_statements
    from tui.sandbox.redis import READ_ACL

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Roles for warroom", 1)[1]
    sql_block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [line for line in sql_block.splitlines() if line and not line.startswith("--")]
    assert statements == [s.as_string(None) + ";" for s in role_statements("choose-one", "choose-another")]
    acl_block = section.split("```text\n", 1)[1].split("```", 1)[0]
    assert " ".join(acl_block.split()) == f"ACL SETUSER warroom_read on >choose-one ~* &* {READ_ACL}"


async def test_sessions_lex_strings_like_the_classifier_whatever_the_server_says(sandbox: SandboxHandle) -> None:
    # A server (here: a database) configured with standard_conforming_strings = off would read
    # 'a\' as an unterminated literal, where the classifier sees the literal end.
    admin = sandbox.admin_dsn("primary").rsplit("/", 1)[0] + "/postgres"
    await direct(admin, "ALTER DATABASE postgres SET standard_conforming_strings = off")
    try:
        base = target(sandbox, "primary")
        other_db = dataclasses.replace(base, dsn=base.dsn.rsplit("/", 1)[0] + "/postgres")
        async with await psycopg.AsyncConnection.connect(other_db.dsn, autocommit=True) as plain:
            cur = await plain.execute("SHOW standard_conforming_strings")
            assert await cur.fetchone() == ("off",)  # the setting is really there
        rows = await pg.run_readonly_sql(other_db, "SELECT current_setting('standard_conforming_strings') AS s, 'a\\' AS lit")
        assert rows == [{"s": "on", "lit": "a\\"}]
    finally:
        await direct(admin, "ALTER DATABASE postgres RESET standard_conforming_strings")
