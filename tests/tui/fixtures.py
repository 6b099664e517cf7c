"""Fixed, deterministic probe readings for cockpit snapshots, Pilot tests and screenshots."""

from __future__ import annotations

import math
from typing import Any

from probes.config import DockerTarget, Environment, HttpTarget, PostgresTarget, RedisTarget
from probes.result import ProbeResult, Status
from tui.scheduler import FixedSource

NOW = 1_700_000_000.0  # frozen "now" of every fixture: ages and charts never depend on the clock
HISTORY_POINTS = 90


def clock() -> float:
    return NOW


def environment(**overrides: Any) -> Environment:
    values: dict[str, Any] = dict(
        name="sandbox",
        postgres=(
            PostgresTarget("primary", "postgresql://warroom@127.0.0.1:55432/app", "primary", ("replica1",),
                           action_dsn="postgresql://warroom_operator@127.0.0.1:55432/app"),
            PostgresTarget("replica", "postgresql://warroom@127.0.0.1:55433/app", "replica",
                           action_dsn="postgresql://warroom_operator@127.0.0.1:55433/app"),
        ),
        redis=(RedisTarget("redis", "redis://127.0.0.1:56379/0", action_url="redis://127.0.0.1:56379/0"),),
        http=(
            HttpTarget("api", "http://127.0.0.1:58080/health"),
            HttpTarget("payments", "http://127.0.0.1:58081/health"),
            HttpTarget("status", "http://127.0.0.1:58082/status.json"),
        ),
        docker=DockerTarget("docker", "unix:///tmp/docker.sock"),
        refresh_s=1.0,
    )
    values.update(overrides)
    return Environment(**values)


def r(target: str, kind: str, probe: str, status: str, summary: str, value: float | None, ts: float = NOW, **data: Any) -> ProbeResult:
    return ProbeResult(target, kind, probe, Status(status), summary, value, data, 3.0, ts)


def session(pid: int, state: str, xact: float | None, query: str, wait: str | None = None) -> dict[str, Any]:
    return {
        "pid": pid, "usename": "app", "application_name": "billing", "client_addr": "127.0.0.1",
        "state": state, "wait_event_type": "Lock" if wait else None, "wait_event": wait,
        "xact_age_s": xact, "query_age_s": xact, "query": query,
    }


LOCK_QUERY = "UPDATE accounts SET balance = balance - 10 WHERE id = 1"


def incident_results(ts: float = NOW) -> list[ProbeResult]:
    """A lock-contention incident with a lagging replica and a growing queue."""
    blocked = [
        {"pid": 4102, "query": LOCK_QUERY, "wait_s": 42.0, "blocked_by": [4101]},
        {"pid": 4103, "query": "UPDATE accounts SET balance = 0 WHERE id = 1", "wait_s": 30.5, "blocked_by": [4101]},
        {"pid": 4104, "query": "SELECT * FROM accounts WHERE id = 1 FOR UPDATE", "wait_s": 12.0, "blocked_by": [4102]},
    ]
    chain = {
        "blocker_pid": 4101, "state": "idle in transaction", "usename": "app", "application_name": "billing", "client_addr": "10.0.4.17",
        "query": LOCK_QUERY, "xact_age_s": 65.0, "blocked": [4102, 4103, 4104], "blocked_sessions": blocked,
    }
    sessions = [session(4101, "idle in transaction", 65.0, LOCK_QUERY)] + [
        session(b["pid"], "active", b["wait_s"], b["query"], "transactionid") for b in blocked
    ]
    containers = [
        {"name": "web", "id": "a1", "image": "busybox", "state": "running", "health": "healthy", "restart_count": 0, "exit_code": 0, "oom_killed": False, "uptime_s": 3600, "cpu_pct": 2.5, "mem_bytes": 12_000_000, "mem_limit": 512_000_000, "mem_pct": 2.3, "status": "ok", "why": ""},
        {"name": "worker", "id": "b2", "image": "busybox", "state": "restarting", "health": None, "restart_count": 4, "exit_code": 1, "oom_killed": False, "uptime_s": 2, "cpu_pct": 0.0, "mem_bytes": 1_000_000, "mem_limit": 512_000_000, "mem_pct": 0.2, "status": "fail", "why": "restarting (restarts 4, last exit 1)"},
        {"name": "migrate", "id": "c3", "image": "busybox", "state": "created", "health": None, "restart_count": 0, "exit_code": None, "oom_killed": False, "uptime_s": None, "cpu_pct": None, "mem_bytes": None, "mem_limit": None, "mem_pct": None, "status": "ok", "why": ""},
    ]
    return [
        r("api", "http", "http", "ok", "api: 200 in 35ms", 35.0, ts, status_code=200, url="http://127.0.0.1:58080/health", method="GET", latency_ms=35.0, phases={"connect_ms": 0.4, "tls_ms": None, "ttfb_ms": 34.0, "total_ms": 35.0}, json_ok=None),
        r("payments", "http", "http", "fail", "payments: 503 Service Unavailable", 12.0, ts, status_code=503, url="http://127.0.0.1:58081/health", method="GET", latency_ms=12.0, phases={}, json_ok=None),
        r("status", "http", "http", "ok", "status: 200 in 8ms", 8.0, ts, status_code=200, url="http://127.0.0.1:58082/status.json", method="GET", latency_ms=8.0, phases={}, json_ok=True),
        r("primary", "postgres", "connections", "warn", "primary: 78/100 connections", 0.78, ts, total=78, max_connections=100, usage=0.78, by_state={"active": 9, "idle": 64, "idle in transaction": 5}, waiting=3, oldest_xact_age_s=65.0, sessions=sessions),
        r("primary", "postgres", "locks", "fail", "primary: 3 sessions blocked, longest 42s", 3, ts, chains=[chain], max_blocked_s=42.0),
        r("primary", "postgres", "replication", "warn", "primary: replica1 lags 24MB", 24 * 1024 * 1024, ts, role="primary", replicas=[{"application_name": "replica1", "client_addr": "127.0.0.1", "state": "streaming", "sync_state": "async", "lag_bytes": 24 * 1024 * 1024, "replay_lag_s": 14.2}], missing=[]),
        r("replica", "postgres", "connections", "ok", "replica: 4/100 connections", 0.04, ts, total=4, max_connections=100, usage=0.04, by_state={"active": 1, "idle": 3}, waiting=0, oldest_xact_age_s=None, sessions=[]),
        r("replica", "postgres", "locks", "ok", "replica: no blocking", 0, ts, chains=[], max_blocked_s=0.0),
        r("replica", "postgres", "replication", "warn", "replica: replay 14s behind", 14.2, ts, role="replica", is_in_recovery=True, replay_paused=False, replay_delay_s=14.2, received_lsn="0/5000000", replayed_lsn="0/3800000", receive_replay_gap_bytes=24 * 1024 * 1024),
        r("redis", "redis", "ping", "ok", "redis: PONG in 0.3ms", 0.3, ts, version="6.2.12", role="master"),
        r("redis", "redis", "memory", "ok", "redis: 21% of maxmemory", 0.21, ts, used_memory=22_000_000, maxmemory=104_857_600, fragmentation_ratio=1.1, evicted_keys=0, maxmemory_policy="noeviction"),
        r("redis", "redis", "clients", "ok", "redis: 7 clients", 7, ts, connected_clients=7, blocked_clients=1, maxclients=10000),
        r("redis", "redis", "memory_top", "ok", "redis: sessions:web:* holds 12.4 MiB (68% of 18.2 MiB sampled in 2000 of 48.1k keys); biggest key report:cache:2023 2.0 MiB",
          float(19_084_000), ts, top_keys=[{"key": "report:cache:2023", "bytes": 2_097_152}, {"key": "sessions:web:9f2c", "bytes": 65_536}],
          top_prefixes=[{"prefix": "sessions:web:*", "head": "sessions:web:", "keys": 1840, "bytes": 13_002_342, "share": 0.6813},
                        {"prefix": "report:cache:*", "head": "report:cache:", "keys": 12, "bytes": 4_194_304, "share": 0.2198}],
          bytes_sampled=19_084_000, keys_sampled=2000, dbsize=48_100, complete=False, stopped="", samples=5, age_s=12.0),
        r("redis", "redis", "queues", "warn", "redis: 240 jobs queued", 240, ts, queues=[
            {"name": "celery", "type": "list", "convention": "celery", "depth": 180, "oldest_age_s": None, "pending": None, "lag": None, "groups": None},
            {"name": "emails", "type": "stream", "convention": "explicit", "depth": 60, "oldest_age_s": 95.0, "pending": 4, "lag": 56, "groups": 1},
        ]),
        r("docker", "docker", "containers", "fail", "docker: 1 of 2 containers not healthy", 1, ts, engine_version="27.0", containers=containers),
    ]


def history(points: int = HISTORY_POINTS) -> list[ProbeResult]:
    """Smooth, deterministic history leading up to NOW (oldest first)."""
    out: list[ProbeResult] = []
    for i in range(points):
        ts = NOW - (points - i)
        wave = math.sin(i / 6.0)
        grow = i / points
        out += [
            r("api", "http", "http", "ok", "api", 30 + 10 * wave, ts, status_code=200, latency_ms=30 + 10 * wave),
            r("payments", "http", "http", "ok", "payments", 15 + 5 * math.cos(i / 4.0), ts, status_code=200, latency_ms=15 + 5 * math.cos(i / 4.0)),
            r("status", "http", "http", "ok", "status", 8 + 2 * wave, ts, status_code=200, latency_ms=8 + 2 * wave),
            r("primary", "postgres", "replication", "ok", "lag", grow * 24 * 1024 * 1024, ts, role="primary", replicas=[{"application_name": "replica1", "lag_bytes": grow * 24 * 1024 * 1024, "replay_lag_s": grow * 14.2}]),
            r("replica", "postgres", "replication", "ok", "delay", grow * 14.2, ts, role="replica", replay_delay_s=grow * 14.2),
            r("redis", "redis", "queues", "ok", "queues", 0, ts, queues=[
                {"name": "celery", "depth": int(40 + 140 * grow)},
                {"name": "emails", "depth": int(60 + 8 * wave)},
            ]),
        ]
    return out


def incident_source() -> FixedSource:
    return FixedSource(incident_results(), history=history(), refresh_s=1.0)
