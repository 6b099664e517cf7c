"""Redis probes: latency, memory and clients from one INFO; job queues via probes.redis_queues;
the keys holding the memory via probes.redis_memory."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError
from redis.exceptions import TimeoutError as RedisTimeout

from probes import redis_memory
from probes.config import RedisTarget
from probes.queue_layouts import Discovery, Reader, explicit_queue
from probes.redis_queues import QueueRun, discover, queues_result
from probes.result import ProbeResult, Status, grade, guarded, worst
from probes.secrets import remember
from probes.thresholds import Thresholds
from probes.units import duration_ms, size

KIND = "redis"
PROBES = ("ping", "memory", "clients", "queues", "memory_top")

# Rounds are dependent steps (INFO + SCAN, then queue reads, then job hashes); each is one pipeline.
MAX_ROUNDS = 4
_BACKSTOP_S = 0.25  # guarded() only catches what our own timeout (which names host:port) missed


class Session:
    """A Redis client kept across refreshes, with the state of the rolling queue discovery."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self._client: aioredis.Redis | None = None
        self.discovery = Discovery()
        self.memory = redis_memory.MemorySampler()  # memory_top samples at most every 30 s
        self.maxclients_in_info: bool | None = None

    def client(self, timeout: float) -> aioredis.Redis:
        if self._client is None:
            remember(urlsplit(self.target.url).password)
            self._client = aioredis.Redis.from_url(
                self.target.url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                client_name="warroom",  # visible in CLIENT LIST, like application_name in PostgreSQL
                driver_info=None,  # no CLIENT SETINFO: one command less on every connect
                retry=Retry(NoBackoff(), 0),  # a retry would hide the failure and double the wait
                max_connections=4,
                protocol=2,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class ProbeTimeout(Exception):
    """Our own deadline passed (kept apart from TimeoutError so the message can name host:port)."""


def address(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    return f"[{host}]:{parts.port or 6379}" if ":" in host else f"{host}:{parts.port or 6379}"


def describe_error(exc: BaseException, url: str, timeout: float) -> str:
    """A short operator message (without the target name; guarded() adds it and redacts)."""
    where = address(url)
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(c) for c in chain)
    if any(isinstance(c, ProbeTimeout | RedisTimeout | TimeoutError) for c in chain):
        return f"timed out after {timeout:g}s waiting for {where} (hung or overloaded?)"
    if "NOAUTH" in text or "Authentication required" in text:
        return f"authentication required at {where} (NOAUTH: the URL gives no password)"
    if "WRONGPASS" in text or "invalid username-password" in text or "invalid password" in text:
        return f"authentication failed at {where} (WRONGPASS: wrong user or password)"
    if "without any password configured" in text:
        return f"{where} has no password set but the URL gives one"
    if any(isinstance(c, AuthenticationError) for c in chain):
        return f"authentication failed at {where}"
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "Connection refused" in text or "Errno 111" in text:
        return f"connection refused at {where} (is Redis running?)"
    if any(isinstance(c, socket.gaierror) for c in chain) or "Name or service not known" in text or "name resolution" in text:
        return f"DNS lookup failed for {urlsplit(url).hostname}"
    if "NOPERM" in text:
        return f"permission denied at {where} (the ACL user needs read commands, INFO and SCAN)"
    if "closed by server" in text or "Connection reset" in text:
        return f"{where} closed the connection (not Redis, or TLS expected?)"
    return f"{type(exc).__name__} from {where}: {exc}".strip().splitlines()[0][:200]


class _Server:
    """INFO and what CONFIG GET added to it."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self.config_maxclients: int | None = None


def read_server(session: Session, server: _Server, run: QueueRun) -> Reader:
    ask_config = session.maxclients_in_info is not True
    commands: list[Any] = [lambda p: p.ping(), lambda p: p.info()]
    if ask_config:
        commands.append(lambda p: p.config_get("maxclients"))
    replies = yield commands
    for reply in replies[:2]:  # NOAUTH and friends arrive here as error replies
        if isinstance(reply, Exception):
            raise reply
    server.info = replies[1]
    session.maxclients_in_info = "maxclients" in server.info
    if micros := server.info.get("server_time_usec"):
        run.server_now = int(micros) / 1e6
    if ask_config and isinstance(replies[2], dict) and str(replies[2].get("maxclients", "")).isdigit():
        server.config_maxclients = int(replies[2]["maxclients"])


async def _drive(client: aioredis.Redis, readers: list[Reader], run: QueueRun) -> tuple[int, float]:
    """Run every reader, one pipeline per round; (rounds, ms of the first round trip)."""
    active = [(r, next(r)) for r in readers]
    rounds, first_ms = 0, 0.0
    while active and rounds < MAX_ROUNDS:
        pipe = client.pipeline(transaction=False)
        for _, commands in active:
            for command in commands:
                command(pipe)
        started = time.perf_counter()
        replies = await pipe.execute(raise_on_error=False) if len(pipe) else []
        if rounds == 0:
            first_ms = (time.perf_counter() - started) * 1000
        rounds += 1
        following, position = [], 0
        for reader, commands in active:
            part = replies[position : position + len(commands)]
            position += len(commands)
            try:
                following.append((reader, reader.send(part)))
            except StopIteration:
                pass
        for reader in run.spawned:
            try:
                following.append((reader, next(reader)))
            except StopIteration:
                pass
        run.spawned = []
        active = following
    return rounds, first_ms


# --- grading ---------------------------------------------------------------------------------


def _pressure(info: dict[str, Any], t: Thresholds) -> bool:
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    return bool(limit) and used / limit >= t.of("memory")["usage_warn"]


def _ping(target: RedisTarget, info: dict[str, Any], ms: float, t: Thresholds) -> ProbeResult:
    limits = t.of("ping")
    status = grade(ms, limits["latency_ms_warn"], limits["latency_ms_fail"])
    role = info.get("role", "")
    data = {"latency_ms": round(ms, 3), "version": str(info.get("redis_version", "")), "role": role,
            "uptime_s": info.get("uptime_in_seconds"), "master_link_status": info.get("master_link_status")}
    summary = f"{target.name}: PONG in {duration_ms(ms)} (Redis {data['version']}, {role})"
    if role == "slave" and info.get("master_link_status") != "up":
        status, summary = worst((status, Status.WARN)), f"{summary}; link to master is {info.get('master_link_status')}"
    elif status is not Status.OK:
        summary = f"{target.name}: slow PONG: {duration_ms(ms)} ({status} at {duration_ms(limits[f'latency_ms_{status}'])})"
    return ProbeResult(target.name, KIND, "ping", status, summary, value=round(ms, 3), data=data)


def _memory(target: RedisTarget, info: dict[str, Any], t: Thresholds) -> ProbeResult:
    limits = t.of("memory")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    usage = round(used / limit, 4) if limit else None
    oom = info.get("errorstat_OOM", {})
    data = {"used_memory": used, "maxmemory": limit, "usage": usage, "maxmemory_policy": info.get("maxmemory_policy"),
            "fragmentation_ratio": info.get("mem_fragmentation_ratio"), "evicted_keys": info.get("evicted_keys", 0),
            "used_memory_rss": info.get("used_memory_rss"), "oom_rejections": oom.get("count", 0) if isinstance(oom, dict) else 0}
    status = grade(usage, limits["usage_warn"], limits["usage_fail"])
    policy = data["maxmemory_policy"]
    if usage is None:
        summary = f"{target.name}: {size(used)} used, no maxmemory limit (policy {policy})"
    else:
        summary = f"{target.name}: memory {size(used)} of {size(limit)} ({usage:.0%}), policy {policy}"
        if status is not Status.OK:
            effect = "writes fail when full" if policy == "noeviction" else "keys get evicted when full"
            summary += f" ({status} at {limits[f'usage_{status}']:.0%}; {effect})"
    return ProbeResult(target.name, KIND, "memory", status, summary, value=usage, data=data)


def _clients(target: RedisTarget, info: dict[str, Any], config_max: int | None, t: Thresholds) -> ProbeResult:
    limits = t.of("clients")
    connected, blocked = int(info.get("connected_clients", 0)), int(info.get("blocked_clients", 0))
    maxclients = info.get("maxclients", config_max)
    usage = round(connected / maxclients, 4) if maxclients else None
    status = worst((grade(usage, limits["usage_warn"], limits["usage_fail"]), grade(blocked, limits["blocked_warn"], None)))
    data = {"connected_clients": connected, "blocked_clients": blocked, "maxclients": maxclients, "usage": usage,
            "rejected_connections": info.get("rejected_connections", 0)}
    of = f" of {maxclients}" if maxclients else " (maxclients unknown)"
    summary = f"{target.name}: {connected} clients{of}, {blocked} blocked"
    return ProbeResult(target.name, KIND, "clients", status, summary, value=connected, data=data)


# --- entry points ----------------------------------------------------------------------------


async def _collect(target: RedisTarget, thresholds: Thresholds, session: Session, timeout: float, wanted: tuple[str, ...]) -> list[ProbeResult]:
    started = time.perf_counter()
    run, server = QueueRun(session.discovery, thresholds), _Server()
    readers = [read_server(session, server, run)]
    if "queues" in wanted:
        for key in target.queues:
            run.schedule(explicit_queue(key, session.discovery.types.get(key, "")))
        for queue in list(session.discovery.known.values()):
            run.schedule(queue)  # read in the first round trip, next to INFO and SCAN
        if target.discover:
            readers.append(discover(run, target.scan_count))
        readers += run.spawned
        run.spawned = []
    client = session.client(timeout)
    try:
        async with asyncio.timeout(timeout):
            # Connect (and AUTH) first so the first round trip measures Redis, not the handshake.
            pool = client.connection_pool
            await pool.release(await pool.get_connection())
            rounds, ms = await _drive(client, readers, run)
    except TimeoutError:
        raise ProbeTimeout() from None
    top: ProbeResult | None = None
    if "memory_top" in wanted:  # after INFO: a sample is due sooner once memory is under pressure
        top = await redis_memory.memory_top(
            target.name, client, session.memory, pressure=_pressure(server.info, thresholds),
            remaining_s=timeout - (time.perf_counter() - started) - 0.05,
            describe=lambda exc: describe_error(exc, target.url, timeout))
    makers: dict[str, Callable[[], ProbeResult]] = {
        "ping": lambda: _ping(target, server.info, ms, thresholds),
        "memory": lambda: _memory(target, server.info, thresholds),
        "clients": lambda: _clients(target, server.info, server.config_maxclients, thresholds),
        "queues": lambda: queues_result(target, run, rounds),
        "memory_top": lambda: top or redis_memory.error(target.name, "not sampled"),  # only if wanted
    }
    return [makers[name]() for name in wanted]


async def collect(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0,
                  session: Session | None = None, probes: tuple[str, ...] = PROBES) -> list[ProbeResult]:
    """Every probe of one Redis target (or those in `probes`); never raises.

    Round trip 1 carries PING, INFO, one bounded SCAN step and the reads of queues a Session
    already knows; 2 reads newly found queues and the oldest job hashes (RQ, BullMQ) or stream
    groups of known ones; 3 happens only for those of newly found queues. `ping` is the time of
    round trip 1: an upper bound of PING latency that costs no extra round trip.
    """
    thresholds = thresholds or Thresholds()
    own = session is None
    session = session or Session(target)
    try:
        return await guarded(
            target.name, KIND, probes, _collect(target, thresholds, session, timeout, probes),
            timeout=timeout + _BACKSTOP_S, describe_error=lambda exc: describe_error(exc, target.url, timeout),
        )
    finally:
        if own:
            await session.aclose()


async def _one(probe: str, target: RedisTarget, thresholds: Thresholds | None, timeout: float, session: Session | None) -> ProbeResult:
    return (await collect(target, thresholds, timeout=timeout, session=session, probes=(probe,)))[0]


async def ping(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Session | None = None) -> ProbeResult:
    return await _one("ping", target, thresholds, timeout, session)


async def memory(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Session | None = None) -> ProbeResult:
    return await _one("memory", target, thresholds, timeout, session)


async def clients(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Session | None = None) -> ProbeResult:
    return await _one("clients", target, thresholds, timeout, session)


async def queues(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Session | None = None) -> ProbeResult:
    return await _one("queues", target, thresholds, timeout, session)


async def memory_top(target: RedisTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Session | None = None) -> ProbeResult:
    """The biggest keys and key prefixes of a bounded sample (probes.redis_memory)."""
    return await _one("memory_top", target, thresholds, timeout, session)
