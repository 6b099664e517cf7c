"""The Redis probes against real redis-server processes: the sandbox's and small ones started here."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis

from probes import redis as probe
from probes import units
from probes.config import RedisTarget
from probes.result import ProbeResult, Status
from probes.thresholds import Thresholds
from tests.probes.redis_wire import RecordingProxy, take_commands
from tui.sandbox.base import LOOPBACK, free_port
from tui.sandbox.redis import start_server, stop_process

PASSWORD = "s3cret-Hunter2-pw"
# Every command the probe may send, each with why it is a read. A command with subcommands is
# listed with its subcommand, never alone: CONFIG GET is here, CONFIG (so CONFIG SET) is not.
READ_COMMANDS = {
    "PING": "liveness and round-trip time",
    "INFO": "memory, clients, replication and the server's clock, in one call",
    "CONFIG GET": "maxclients, when INFO does not report it",
    "CLIENT SETNAME": "names the probe's own connection 'warroom' (seen in CLIENT LIST; changes nothing else)",
    "SCAN": "rolling queue discovery, bounded by COUNT (never KEYS)",
    "SSCAN": "RQ's and Sidekiq's sets of queue names",
    "TYPE": "which reader a queue key needs",
    "LLEN": "list queue depth",
    "LINDEX": "oldest and newest list entries",
    "LRANGE": "the oldest few Celery messages (countdown/ETA tasks wait in the list) or Dramatiq delayed ids, bounded",
    "HMGET": "an RQ, BullMQ or Dramatiq job's enqueue time or due time",
    "ZCARD": "sorted-set queue depth",
    "ZRANGE": "the lowest score (oldest or most overdue entry)",
    "XLEN": "stream length",
    "XINFO GROUPS": "consumer groups and their lag",
    "XINFO STREAM": "first and last entry ids",
    "XPENDING": "entries delivered and not acknowledged",
    "XRANGE": "entries a group has not read yet",
    "MEMORY USAGE": "memory_top: one key's size (SAMPLES 5, never 0: no walk of a whole big key)",
    "DBSIZE": "memory_top: how many keys the sample is out of",
}
# Commands whose subcommands differ in what they do: never allowed without one.
WITH_SUBCOMMANDS = {"CONFIG", "CLIENT", "XINFO", "XGROUP", "OBJECT", "MEMORY", "ACL", "CLUSTER", "SCRIPT", "DEBUG"}


def unread_commands(commands: Iterable[Sequence[str]]) -> list[str]:
    """Every command (first two words) not in READ_COMMANDS, in order; failing closed, an unknown
    command or subcommand is not a read."""
    rejected = []
    for args in commands:
        words = [str(word).upper() for word in args[:2]]
        if words and (words[0] in READ_COMMANDS or " ".join(words) in READ_COMMANDS):
            continue
        rejected.append(" ".join(words))
    return rejected


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
        assert "noeviction" in memory.summary and "64.0 MiB" in memory.summary
        # The culprit is named: the ballast prefix holds nearly all the sampled memory.
        top = (await read_all(target, limits))["memory_top"]
        assert top.status is Status.OK and top.data["complete"], top.summary
        head = top.data["top_prefixes"][0]
        assert head["prefix"] == "warroom:ballast:*" and head["share"] > 0.8 and head["bytes"] > 40 * 1024 * 1024, head
        assert top.data["top_keys"][0]["key"].startswith("warroom:ballast:") and top.data["top_keys"][0]["bytes"] > 200_000
        assert top.data["dbsize"] >= top.data["keys_sampled"] >= head["keys"] > 100
        assert top.summary.startswith("redis: warroom:ballast:* holds ") and "MiB" in top.summary
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


def test_read_check_accepts_only_listed_commands_and_subcommands() -> None:
    assert not WITH_SUBCOMMANDS & READ_COMMANDS.keys()
    reads = [["ping"], ["INFO"], ["config", "get", "maxclients"], ["CLIENT", "SETNAME", "warroom"],
             ["SCAN", "0", "COUNT", "100", "TYPE", "stream"], ["XINFO", "STREAM", "orders"]]
    assert unread_commands(reads) == []
    for command in (["CONFIG", "SET", "maxmemory", "1"], ["client", "kill", "127.0.0.1:6000"], ["CONFIG"],
                    ["CLIENT", "PAUSE", "100"], ["CONFIG", "RESETSTAT"], ["XGROUP", "DESTROY", "s", "g"],
                    ["FLUSHALL"], ["SET", "k", "v"], ["DEL", "k"], ["KEYS", "*"]):
        assert unread_commands([*reads, command, ["PING"]]) == [" ".join(command[:2]).upper()], command


def test_recording_proxy_parses_requests_split_anywhere() -> None:
    def request(*words: str) -> bytes:
        return f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)

    sent = [["CLIENT", "SETNAME", "warroom"], ["CONFIG", "GET", "maxclients"], ["HMGET", "job", "a\r\nb", ""], ["PING"]]
    wire = b"".join(request(*words) for words in sent) + b"PING inline\r\n"
    for cut in range(len(wire) + 1):  # a pipeline arriving in two reads, cut at every byte
        buffer = bytearray(wire[:cut])
        got = take_commands(buffer)
        buffer += wire[cut:]
        assert got + take_commands(buffer) == [*sent, ["PING", "inline"]] and not buffer, cut


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
    async with RecordingProxy(server.port) as proxy:
        target = RedisTarget("ro", proxy.url(), queues=("orders", "absent-queue"))
        session = probe.Session(target)
        try:
            for _ in range(3):
                found = await read_all(target, session=session)
            await read_all(target)  # and a one-off collect, on a connection of its own
        finally:
            await session.aclose()
    sent = proxy.commands
    assert found["ping"].status is Status.OK and proxy.connections >= 2, (found["ping"].summary, proxy.connections)
    named = {" ".join(args[:2]).upper() if args[0].upper() in WITH_SUBCOMMANDS else args[0].upper() for args in sent}
    assert {"CLIENT SETNAME", "SCAN", "LLEN", "HMGET", "XPENDING", "XINFO GROUPS", "MEMORY USAGE", "DBSIZE"} <= named, named  # it did look
    usage = [args for args in sent if args[0].upper() == "MEMORY"]
    assert usage and all([a.upper() for a in args[3:]] == ["SAMPLES", str(probe.redis_memory.USAGE_SAMPLES)] for args in usage), usage
    assert unread_commands(sent) == [], Counter(unread_commands(sent))  # every command, each time it was sent
    # The server counted the same commands the proxy saw (plus this test's CONFIG RESETSTAT):
    # nothing reached Redis around the proxy.
    stats = client.info("commandstats")
    served = Counter({name.removeprefix("cmdstat_"): s["calls"] + s["rejected_calls"] for name, s in stats.items()})
    assert served == Counter(args[0].lower() for args in sent) + Counter({"config": 1}), served
    table = client.command()
    for name in served:  # and Redis agrees no command it ran writes (6.2 flags whole commands only)
        flags = [f.decode() if isinstance(f, bytes) else f for f in table[name]["flags"]]
        assert "write" not in flags, (name, flags)
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


# --- memory_top: the keys holding the memory -------------------------------------------------


def test_prefixes_group_keys_the_way_applications_name_them() -> None:
    cases = {"warroom:ballast:17": "warroom:ballast:*", "rq:job:ab12": "rq:job:*", "user:42": "user:*",
             "session:user:42:cart": "session:user:*", "celery": "celery", "{tenant7}:cart": "{*",
             "cart{tenant7}": "cart{*", "a:b{x}:c": "a:b{*"}
    for key, group in cases.items():
        assert probe.redis_memory.prefix(key) == group, key


async def test_sandbox_names_the_biggest_keys_and_prefix(sandbox: Any) -> None:
    admin = syncredis.Redis.from_url(sandbox.admin_dsn("redis"))  # warroom's read user cannot SET
    unique = f"memtest{time.monotonic_ns()}"
    try:
        pipe = admin.pipeline(transaction=False)
        for i in range(12):
            pipe.set(f"{unique}:blob:{i}", b"z" * 300_000)
        pipe.hset(f"{unique}:huge-hash", mapping={f"field{i}": "v" * 2000 for i in range(1000)})
        pipe.execute()
        top = await probe.memory_top(sandbox_target(sandbox), sandbox.env.thresholds)
        assert top.status is Status.OK, top.summary
        prefixes = {row["prefix"]: row for row in top.data["top_prefixes"]}
        assert prefixes[f"{unique}:blob:*"]["keys"] == 12 and prefixes[f"{unique}:blob:*"]["bytes"] >= 12 * 300_000
        assert top.data["top_prefixes"][0]["prefix"] == f"{unique}:blob:*", top.data["top_prefixes"]
        # MEMORY USAGE with SAMPLES 5 estimates the hash from 5 fields: about 2 MB of values.
        biggest, *others = top.data["top_keys"]
        assert biggest["key"] == f"{unique}:huge-hash" and biggest["bytes"] > 1_000_000, biggest
        assert len(others) == probe.redis_memory.TOP_KEYS - 1
        assert all(row["key"].startswith(f"{unique}:blob:") and row["bytes"] >= 300_000 for row in others), others
        assert top.data["dbsize"] >= top.data["keys_sampled"] >= 13
        assert f"sampled in {top.data['keys_sampled']} of" in top.summary
    finally:
        admin.delete(*[f"{unique}:blob:{i}" for i in range(12)], f"{unique}:huge-hash")
        admin.close()


async def test_memory_sample_is_bounded_and_taken_at_most_every_interval(server: Server) -> None:
    db = 6
    keys = syncredis.Redis(host=LOOPBACK, port=server.port, db=db)
    keys.flushdb()
    pipe = keys.pipeline(transaction=False)
    for i in range(5000):
        pipe.set(f"cache:item:{i}", i)
    pipe.set("report:big", b"r" * 500_000)
    pipe.execute()
    target = RedisTarget("sampled", server.url(db), discover=False)
    session = probe.Session(target)

    def usage_calls() -> int:
        stats = server.client.info("commandstats")
        return int(stats.get("cmdstat_memory", {}).get("calls", 0))

    try:
        before = usage_calls()
        first = (await read_all(target, session=session))["memory_top"]
        measured = usage_calls() - before
        data = first.data
        assert first.status is Status.OK and data["dbsize"] == 5001
        assert 0 < data["keys_sampled"] <= probe.redis_memory.MAX_KEYS + 50 < data["dbsize"]
        assert measured <= probe.redis_memory.MAX_KEYS + 50 and not data["complete"]
        assert data["round_trips"] <= probe.redis_memory.MAX_KEYS // probe.redis_memory.SCAN_COUNT + 3
        assert f"of {units.count(5001)} keys" in first.summary
        # The next refreshes reuse the sample: no MEMORY USAGE at all until it is due again.
        for _ in range(3):
            again = (await read_all(target, session=session))["memory_top"]
        assert usage_calls() - before == measured
        assert again.data["taken_at"] == data["taken_at"] and again.timestamp > first.timestamp
        # Once due, the walk resumes where it stopped: over a few samples it meets the big key.
        seen_big = "report:big" in {row["key"] for row in data["top_keys"]}
        for _ in range(4):
            session.memory.last_at -= probe.redis_memory.SAMPLE_EVERY_S
            sample = (await read_all(target, session=session))["memory_top"]
            seen_big = seen_big or sample.data["top_keys"][0]["key"] == "report:big"
        assert seen_big
        # Found once, the biggest key is measured again in every sample, wherever the walk is.
        session.memory.last_at -= probe.redis_memory.SAMPLE_EVERY_S
        kept = (await read_all(target, session=session))["memory_top"]
        assert kept.data["top_keys"][0]["key"] == "report:big" and kept.data["top_keys"][0]["bytes"] >= 500_000
        keys.delete("report:big")  # gone: it drops out at the next sample
        session.memory.last_at -= probe.redis_memory.SAMPLE_EVERY_S
        gone = (await read_all(target, session=session))["memory_top"]
        assert "report:big" not in {row["key"] for row in gone.data["top_keys"]}
    finally:
        await session.aclose()
        keys.flushdb()
        keys.close()
