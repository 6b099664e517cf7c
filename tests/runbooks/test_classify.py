"""The SQL / Redis / Docker classifier decides by what a command does, not by its first word."""

from __future__ import annotations

import pytest

from runbooks.classify import SqlSyntaxError, classify_docker, classify_redis, classify_sql

READ_ONLY = [
    "SELECT 1",
    "select * from pg_stat_activity where state = 'active'",
    "select 'pg_terminate_backend(1)'",  # a string literal, not a call
    "select 'x' as pg_terminate_backend",
    'select "pg_terminate_backend" from t',  # a column named like the function, not a call
    "select $$ delete from t $$",
    "select $tag$ ; drop table t; $tag$ as body",
    "select 1 -- ; delete from t",
    "select 1 /* ; delete from t */",
    "select 1 /* nested /* ; delete from t */ still comment */",
    "WITH x AS (SELECT 1) SELECT * FROM x",
    "show max_connections",
    "explain select * from t",
    "explain (costs off) select 1",
    "values (1), (2)",
    "table pg_settings",
    "(select 1) union (select 2)",
    "select pg_blocking_pids(123), pg_backend_pid()",
    "select currval('s'), pg_get_wal_replay_pause_state()",
    "select E'it\\'s ; delete from t'",
    "select 1; select 2",
    "select last_update, updated_at from t",
    "select * from t where a in (1, 2)",
]

ACTIONS = [
    ("SELECT pg_terminate_backend(123)", "pg_terminate_backend"),
    ("select PG_CANCEL_BACKEND(123)", "pg_cancel_backend"),
    ("select pg_catalog.pg_terminate_backend (123)", "pg_terminate_backend"),
    ("select pg_terminate_backend/* hide */(123)", "pg_terminate_backend"),
    ('select "pg_terminate_backend"(123)', "pg_terminate_backend"),
    ("select * from pg_terminate_backend(123)", "pg_terminate_backend"),
    ("select pg_reload_conf()", "pg_reload_conf"),
    ("select set_config('work_mem', '1GB', false)", "set_config"),
    ("select nextval('s')", "nextval"),
    ("select setval('s', 1)", "setval"),
    ("select pg_advisory_lock(1)", "pg_advisory_lock"),
    ("select pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock"),
    ("select pg_sleep(1000)", "pg_sleep"),
    ("select pg_stat_reset()", "pg_stat_reset"),
    ("select pg_wal_replay_resume()", "pg_wal_replay_resume"),
    ("select txid_current()", "txid_current"),
    ("select pg_notify('c', 'x')", "pg_notify"),
    ("select pg_read_file('/etc/passwd')", "pg_read_file"),
    ("select lo_import('/etc/passwd')", "lo_import"),
    ("select dblink_exec('x', 'delete from t')", "dblink_exec"),
    ("select query_to_xml('delete from t', true, true, '')", "query_to_xml"),
    ("select pg_drop_replication_slot('s')", "pg_drop_replication_slot"),
    ("select pg_create_logical_replication_slot('s', 'pgoutput')", "pg_create_logical_replication_slot"),
    ("select pg_switch_wal()", "pg_switch_wal"),
]

WRITES = [
    "with x as (delete from t returning *) select * from x",
    "WITH moved AS (UPDATE t SET a = 1 RETURNING *) SELECT count(*) FROM moved",
    "with x as (insert into t values (1) returning *) select * from x",
    "select * into t2 from t",
    "SELECT * FROM accounts WHERE id = 1 FOR UPDATE",
    "select * from t for share",
    "select * from t for no key update",
    "select * from t for key share",
    "delete from t",
    "update t set a = 1",
    "insert into t values (1)",
    "merge into t using s on true when matched then delete",
    "truncate t",
    "drop table t",
    "set work_mem = '1GB'",
    "do $$ begin delete from t; end $$",
    "call cleanup()",
    "copy t to stdout",
    "lock table t",
    "vacuum t",
    "begin",
    "select 1; delete from t",
    "/* select */ delete from t",
    "select 1 /* */; update t set a = 1",
    "explain analyze delete from t",
    "explain (analyze) select 1",
    "explain (analyze true, costs off) select 1",
    "explain delete from t",
]


@pytest.mark.parametrize("sql", READ_ONLY)
def test_read_only_sql(sql: str) -> None:
    verdict = classify_sql(sql)
    assert verdict.read_only, verdict.reason


@pytest.mark.parametrize(("sql", "function"), ACTIONS)
def test_side_effecting_functions_are_actions(sql: str, function: str) -> None:
    verdict = classify_sql(sql)
    assert verdict.verdict == "action"
    assert function in verdict.calls


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_actions(sql: str) -> None:
    assert classify_sql(sql).verdict == "action"


def test_reasons_name_the_problem() -> None:
    assert "FOR UPDATE" in classify_sql("select * from t for update").reason
    assert "INTO" in classify_sql("select * into t2 from t").reason
    assert "DELETE" in classify_sql("with x as (delete from t returning *) select 1").reason


@pytest.mark.parametrize("sql", ["select 'open", "select 1 /* open", 'select "open', "select $a$ open", ""])
def test_unreadable_sql_is_an_error(sql: str) -> None:
    with pytest.raises(SqlSyntaxError):
        classify_sql(sql)


@pytest.mark.parametrize(
    ("command", "verdict"),
    [
        ("INFO memory", "read"), ("PING", "read"), ("LLEN celery", "read"), ("XLEN s", "read"),
        ("SCAN 0 MATCH q:* COUNT 100", "read"), ("CONFIG GET maxmemory", "read"), ("SLOWLOG GET 10", "read"),
        ("CLIENT LIST", "read"), ("MEMORY USAGE k", "read"), ("LRANGE q 0 10", "read"),
        ("DEL k", "action"), ("FLUSHALL", "action"), ("CONFIG SET maxmemory 1gb", "action"),
        ("CLIENT KILL ID 5", "action"), ("SLOWLOG RESET", "action"), ("XTRIM s MAXLEN 10", "action"),
        ("SET k v", "action"), ("EVAL 'return 1' 0", "action"),
        ("KEYS *", "refused"), ("MONITOR", "refused"), ("SCAN 0", "refused"), ("SCAN 0 COUNT 1000000", "refused"),
        ("LRANGE q 0 -1", "refused"), ("BLPOP q 0", "refused"), ("DEBUG SLEEP 10", "refused"), ("SHUTDOWN", "refused"),
        ("SCAN 0 COUNT 10 COUNT 100000", "refused"), ("--bigkeys", "refused"), ("LATENCY RESET", "action"),
    ],
)
def test_redis(command: str, verdict: str) -> None:
    assert classify_redis(command.split()).verdict == verdict


@pytest.mark.parametrize(
    ("command", "verdict"),
    [
        ("ps", "read"), ("inspect api", "read"), ("logs api --tail 50", "read"), ("docker logs api", "read"),
        ("restart api", "action"), ("stop api", "action"), ("kill api", "action"), ("rm api", "action"),
        ("exec api sh", "refused"), ("run busybox", "refused"), ("logs api --tail 100000", "refused"),
        ("restart api web", "refused"),
        ("DOCKER RESTART api", "action"), ("docker RM api", "action"), ("Docker Logs api --tail 5", "read"),
        ("logs api --tail ²", "refused"),
    ],
)
def test_docker(command: str, verdict: str) -> None:
    assert classify_docker(command.split()).verdict == verdict
