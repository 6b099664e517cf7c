"""The Redis probes against real redis-server processes: the sandbox's and small ones started here."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis

from probes import redis as probe
from probes.config import RedisTarget
from probes.result import ProbeResult, Status
from probes.thresholds import Thresholds
from tui.sandbox.base import LOOPBACK, free_port
from tui.sandbox.redis import start_server, stop_process

PASSWORD = "s3cret-Hunter2-pw"
# Every command the probe may send. CLIENT is SETNAME on connect (shows "warroom" in CLIENT LIST).
READ_COMMANDS = {
    "ping", "info", "config|get", "config", "scan", "sscan", "type", "llen", "lindex", "hmget",
    "zcard", "zrange", "xlen", "xinfo|groups", "xinfo|stream", "xinfo", "xpending", "xrange",
    "client|setname", "client",
}


# --- helpers ------------------------------------------------------------------------------


def sandbox_target(sandbox: Any, **changes: Any) -> RedisTarget:
    target = next(t for t in sandbox.env.redis if t.name == "redis")
    fields = {"name": target.name, "url": target.url, "queues": target.queues, "discover": target.discover, "scan_count": target.scan_count}
    return RedisTarget(**(fields | changes))


async def read_all(target: RedisTarget, thresholds: Thresholds | None = None, **kw: Any) -> dict[str, ProbeResult]:
    results = await probe.collect(target, thresholds or Thresholds(), timeout=kw.pop("timeout", 2.0), **kw)
    return {r.probe: r for r in results}


def queue_rows(result: ProbeResult) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result.data["queues"]}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if last := await check():
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s")


class Server:
    """A private redis-server for one test module (so tests may fill and count it freely)."""

    def __init__(self, process: Any, port: int, password: str | None = None) -> None:
        self.process, self.port, self.password = process, port, password
        self.client = syncredis.Redis(host=LOOPBACK, port=port, password=password)

    @classmethod
    async def start(cls, directory: Path, *extra: str) -> Server:
        process, port = await start_server(directory, *extra)
        return cls(process, port, next((line.split()[1] for line in extra if line.startswith("requirepass")), None))

    def url(self, db: int = 0, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/{db}"

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = asyncio.run(Server.start(tmp_path_factory.mktemp("redis-plain")))
    yield started
    started.stop()
    assert started.process.poll() is not None


# --- the sandbox ----------------------------------------------------------------------------


async def test_healthy_sandbox_reads_ok_and_finds_every_convention(sandbox: Any) -> None:
    target = sandbox_target(sandbox)
    found = await read_all(target, sandbox.env.thresholds)
    assert set(found) == set(probe.PROBES)
    for result in found.values():
        assert result.status is Status.OK, result.summary
        assert result.kind == "redis" and result.target == "redis"
    assert 0 < found["ping"].value < 50 and found["ping"].data["version"].startswith(("6.", "7."))
    assert found["ping"].data["role"] == "master"
    memory = found["memory"].data
    assert memory["maxmemory"] == 64 * 1024 * 1024 and 0 < memory["usage"] < 0.5
    assert memory["maxmemory_policy"] == "noeviction" and memory["fragmentation_ratio"] > 0
    assert found["clients"].data["connected_clients"] >= 2 and found["clients"].data["maxclients"] > 0
    rows = queue_rows(found["queues"])
    expected = {
        "rq:queue:default": ("list", "rq"), "queue:mailers": ("list", "sidekiq"), "celery": ("list", "celery"),
        "bull:emails:wait": ("list", "bullmq"), "bull:emails:delayed": ("zset", "bullmq"), "events": ("stream", "explicit"),
    }
    for name, (kind, convention) in expected.items():
        assert (rows[name]["type"], rows[name]["convention"]) == (kind, convention), rows[name]
    assert rows["events"]["groups"][0]["name"] == "workers"
    assert rows["celery"]["explicit"] and not rows["rq:queue:default"]["explicit"]
    assert rows["celery"]["oldest_age_s"] is None  # Celery messages carry no enqueue time
    # Without explicit names the stream is still found, by type.
    discovered = queue_rows((await read_all(sandbox_target(sandbox, queues=())))["queues"])
    assert discovered["events"]["type"] == "stream" and discovered["events"]["convention"] == "unknown"
    assert discovered["celery"]["convention"] == "celery" and not discovered["celery"]["explicit"]


async def test_queue_backlog_grows_ages_and_heals(sandbox: Any) -> None:
    target, limits = sandbox_target(sandbox), sandbox.env.thresholds
    session = probe.Session(target)
    try:
        with sandbox.scenario("queue-backlog"):
            async def backlogged() -> ProbeResult | None:
                queues = (await read_all(target, limits, session=session))["queues"]
                return queues if queues.status in (Status.WARN, Status.FAIL) else None

            first = queue_rows(await eventually(backlogged))
            await asyncio.sleep(1.5)
            later_result = (await read_all(target, limits, session=session))["queues"]
            later = queue_rows(later_result)
            assert later_result.status in (Status.WARN, Status.FAIL)
            assert later_result.value == sum(row["depth"] for row in later.values())
            for name in ("rq:queue:default", "queue:mailers", "bull:emails:wait", "celery", "events"):
                assert later[name]["depth"] > first[name]["depth"] >= limits.get("queues", "depth_warn"), name
                assert later[name]["status"] in ("warn", "fail")
            for name in ("rq:queue:default", "queue:mailers", "bull:emails:wait"):
                # A real age from the job's own timestamp, growing with the clock.
                assert first[name]["oldest_age_s"] is not None and later[name]["oldest_age_s"] > first[name]["oldest_age_s"] > 0
            assert later["celery"]["oldest_age_s"] is None  # unknown, never a false 0
            stream = later["events"]
            assert stream["lag"] > 0 and stream["oldest_age_s"] > 0 and stream["groups"][0]["lag"] == stream["lag"]
            assert "depth" in later_result.summary
        healed = await eventually(lambda: _status_is(target, limits, "queues", Status.OK), timeout=10)
        assert all(row["depth"] < limits.get("queues", "depth_warn") for row in healed.data["queues"])
    finally:
        await session.aclose()


async def _status_is(target: RedisTarget, limits: Thresholds, name: str, status: Status) -> ProbeResult | None:
    result = (await read_all(target, limits))[name]
    return result if result.status is status else None


async def test_redis_memory_fills_near_maxmemory_and_heals(sandbox: Any) -> None:
    target, limits = sandbox_target(sandbox), sandbox.env.thresholds
    with sandbox.scenario("redis-memory"):
        memory = (await read_all(target, limits))["memory"]
        assert memory.status in (Status.WARN, Status.FAIL), memory.summary
        assert memory.value is not None and memory.value > 0.9 and memory.value == memory.data["usage"]
        assert "noeviction" in memory.summary and "64.0 MB" in memory.summary
    healed = await eventually(lambda: _status_is(target, limits, "memory", Status.OK), timeout=10)
    assert healed.value < 0.5


# --- a private server: discovery bounds, read-only, explicit queues ------------------------------


async def test_discovery_is_bounded_per_refresh_and_complete_over_refreshes(server: Server) -> None:
    db = 5
    noise = syncredis.Redis(host=LOOPBACK, port=server.port, db=db)
    noise.flushdb()
    pipe = noise.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"cache:item:{i}", i)
    pipe.lpush("queue:hidden", json.dumps({"enqueued_at": time.time() - 5}))
    pipe.execute()
    target = RedisTarget("noisy", server.url(db), scan_count=100)
    started = time.perf_counter()
    one = (await read_all(target, timeout=1.0))["queues"]
    assert time.perf_counter() - started < 1.0 and one.status is Status.OK
    # SCAN's COUNT is a hint: Redis finishes the hash bucket it is in, a few keys at most.
    assert 0 < one.data["scanned"] <= 100 + 8 and one.data["scan_pass_complete"] is False
    session, seen, steps = probe.Session(target), 0, 0
    try:
        while steps < 60:
            queues = (await read_all(target, session=session))["queues"]
            steps, seen = steps + 1, seen + queues.data["scanned"]
            assert queues.data["scanned"] <= 108 and queues.data["round_trips"] <= 3
            if queues.data["scan_pass_complete"]:
                break
        assert 3001 <= seen <= 3001 + 60 and 25 <= steps <= 40  # every key once, ~30 bounded steps
        rows = queue_rows((await read_all(target, session=session))["queues"])
        assert rows["queue:hidden"]["depth"] == 1 and rows["queue:hidden"]["oldest_age_s"] >= 5
    finally:
        await session.aclose()
        noise.flushdb()
        noise.close()


async def test_probe_sends_read_commands_only(server: Server) -> None:
    client, now = server.client, time.time()
    client.flushdb()
    client.rpush("rq:queue:reports", "job-1")
    client.hset("rq:job:job-1", mapping={"enqueued_at": "2020-01-01T00:00:00.000000Z"})
    client.lpush("queue:default", json.dumps({"enqueued_at": now - 42}))
    client.zadd("retry", {"job": now - 3})
    client.set("bull:video:id", 1)
    client.xadd("orders", {"n": 1})
    client.xgroup_create("orders", "billing", id="0")
    keys_before = sorted(client.keys("*"))
    client.config_resetstat()
    target = RedisTarget("ro", server.url(), queues=("orders", "absent-queue"))
    session = probe.Session(target)
    try:
        for _ in range(3):
            found = await read_all(target, session=session)
    finally:
        await session.aclose()
    stats = client.info("commandstats")
    called = {name.removeprefix("cmdstat_") for name in stats} - {"config|resetstat", "config", "info"}
    assert {"scan", "llen", "hmget", "xpending"} <= called and called & {"xinfo", "xinfo|groups"}  # it did look
    assert called <= READ_COMMANDS, called - READ_COMMANDS
    table = client.command()
    for name in called:  # and Redis itself agrees none of them writes
        flags = [f.decode() if isinstance(f, bytes) else f for f in table[name.split("|")[0]]["flags"]]
        assert "write" not in flags and "readonly" in flags or name.startswith(("info", "ping", "config", "client")), (name, flags)
    assert sorted(client.keys("*")) == keys_before
    rows = queue_rows(found["queues"])
    assert rows["rq:queue:reports"]["oldest_age_s"] > 365 * 86400
    assert 41 < rows["queue:default"]["oldest_age_s"] < 60
    assert rows["retry"]["type"] == "zset" and rows["retry"]["oldest_age_s"] >= 3  # overdue
    assert rows["orders"]["groups"][0]["lag"] == 1 and rows["orders"]["explicit"]
    assert rows["absent-queue"]["depth"] == 0 and rows["absent-queue"]["type"] == "none"
    assert rows["bull:video:wait"]["depth"] == 0 and rows["bull:video:wait"]["convention"] == "bullmq"


async def test_explicit_key_of_another_type_is_reported_not_raised(server: Server) -> None:
    server.client.hset("settings", mapping={"a": 1})
    result = (await read_all(RedisTarget("typed", server.url(), queues=("settings",), discover=False)))["queues"]
    row = queue_rows(result)["settings"]
    assert result.status is Status.WARN and "hash" in row["error"] and "settings" in result.summary
    assert result.data["scanned"] is None  # discovery off: no SCAN at all


async def test_no_maxmemory_means_usage_unknown_not_a_failure(tmp_path: Path) -> None:
    unlimited = await Server.start(tmp_path, "maxmemory 0")
    try:
        memory = await probe.memory(RedisTarget("nolimit", unlimited.url()))
        assert memory.status is Status.OK and memory.value is None and memory.data["maxmemory"] == 0
        assert "no maxmemory limit" in memory.summary
    finally:
        unlimited.stop()


# --- bad input: every failure is a short error result --------------------------------------------


async def test_refused_port_is_a_short_error() -> None:
    port = free_port()
    started = time.perf_counter()
    found = await read_all(RedisTarget("cache", f"redis://{LOOPBACK}:{port}/0"), timeout=1.0)
    assert time.perf_counter() - started < 1.0
    for result in found.values():
        assert result.status is Status.ERROR
        assert result.summary == f"cache: connection refused at {LOOPBACK}:{port} (is Redis running?)"


async def test_hung_server_times_out_within_the_deadline() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    listener = await asyncio.start_server(accept_and_say_nothing, LOOPBACK, 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        started = time.perf_counter()
        found = await read_all(RedisTarget("stuck", f"redis://{LOOPBACK}:{port}/0"), timeout=1.0)
        elapsed = time.perf_counter() - started
        assert elapsed < 1.5, elapsed
        assert connections, "the probe never connected"
        for result in found.values():
            assert result.status is Status.ERROR
            assert result.summary == f"stuck: timed out after 1s waiting for {LOOPBACK}:{port} (hung or overloaded?)"
    finally:
        for writer in connections:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def test_auth_failures_are_named_and_never_show_the_password(tmp_path: Path) -> None:
    guarded_server = await Server.start(tmp_path, f"requirepass {PASSWORD}")
    try:
        wrong = await read_all(RedisTarget("auth", guarded_server.url(password=PASSWORD[::-1])))
        missing = await read_all(RedisTarget("auth", guarded_server.url()))
        right = await read_all(RedisTarget("auth", guarded_server.url(password=PASSWORD)))
    finally:
        guarded_server.stop()
    where = f"{LOOPBACK}:{guarded_server.port}"
    for result in wrong.values():
        assert result.status is Status.ERROR
        assert result.summary == f"auth: authentication failed at {where} (WRONGPASS: wrong user or password)"
    assert all("NOAUTH" in r.summary and where in r.summary for r in missing.values())
    assert all(r.status is Status.OK for r in right.values())
    text = json.dumps([r.to_json() for r in (*wrong.values(), *missing.values(), *right.values())])
    assert PASSWORD not in text and PASSWORD[::-1] not in text


async def test_one_coroutine_per_probe(server: Server) -> None:
    target = RedisTarget("single", server.url(), discover=False)
    for name in probe.PROBES:
        result = await getattr(probe, name)(target)
        assert (result.probe, result.status) == (name, Status.OK)


def test_error_wording_for_dns_and_closed_connections() -> None:
    # No lookup is made (the network rule allows loopback only): the wording is checked on the
    # exception chain redis-py raises for a failed resolution.
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as cause:
            raise syncredis.ConnectionError("Error -2 connecting to db.internal:6379.") from cause
    except syncredis.ConnectionError as exc:
        assert probe.describe_error(exc, "redis://:pw@db.internal:6379/0", 2.0) == "DNS lookup failed for db.internal"
    closed = syncredis.ConnectionError("Connection closed by server.")
    assert probe.describe_error(closed, "redis://127.0.0.1:6390", 2.0) == "127.0.0.1:6390 closed the connection (not Redis, or TLS expected?)"
