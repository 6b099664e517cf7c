"""The queue probe against jobs enqueued by the real libraries (Celery, RQ, Dramatiq, BullMQ) and
Sidekiq's documented layout, on a private redis-server: its figures equal what they enqueued."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis

from probes import queue_layouts, redis_queues
from probes import redis as probe
from probes.config import RedisTarget
from probes.result import ProbeResult
from tests.probes.redis_wire import RecordingProxy
from tests.probes.test_redis import unread_commands
from tui.sandbox.base import LOOPBACK
from tui.sandbox.redis import start_server, stop_process

DELAY_S = 120.0  # every delayed job below is due this far ahead
SLACK_S = 10.0  # a busy 2-core machine: enqueue-to-probe time stays well below this


def add(x: int, y: int) -> int:  # RQ's job function (RQ stores its dotted name; nothing runs it)
    return x + y


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    process, port = await start_server(tmp_path / "redis")
    try:
        yield f"redis://{LOOPBACK}:{port}/0"
    finally:
        stop_process(process)


async def probe_queues(url: str) -> ProbeResult:
    result = await probe.queues(RedisTarget("jobs", url, scan_count=1000), timeout=5.0)
    assert result.status.value != "error", result.summary
    return result


def rows(result: ProbeResult) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result.data["queues"]}


def due_in(row: dict[str, Any]) -> float:
    assert row["next_due_in_s"] is not None, row
    return float(row["next_due_in_s"])


def assert_age(row: dict[str, Any], enqueued: float) -> None:
    """An age measured from the library's own enqueue time: known, and what the clock says."""
    assert row["oldest_age_s"] is not None, row
    assert 0 <= row["oldest_age_s"] <= time.time() - enqueued + 1, row


# --- one library at a time -------------------------------------------------------------------


async def test_rq_waiting_scheduled_and_registries(redis_url: str) -> None:
    import rq

    client = syncredis.Redis.from_url(redis_url)
    started = time.time()
    queue = rq.Queue("emails", connection=client)
    first = queue.enqueue(add, 1, 2)
    queue.enqueue(add, 3, 4)
    queue.enqueue(add, 5, 6)
    queue.enqueue(add, 7, 8, depends_on=first)  # deferred: not waiting, not a queue
    queue.enqueue_in(timedelta(seconds=DELAY_S), add, 1, 1)
    queue.enqueue_at(datetime.now(UTC) + timedelta(hours=1), add, 2, 2)
    orphan = rq.Queue("orphans", connection=client).enqueue(add, 0, 0)
    client.delete(f"rq:job:{orphan.id}")  # its hash expired or was deleted: age unknown
    result = await probe_queues(redis_url)
    found = rows(result)
    waiting, scheduled = found["rq:queue:emails"], found["rq:scheduled:emails"]
    assert len(queue) == 3 and (waiting["library"], waiting["state"], waiting["depth"]) == ("rq", "waiting", len(queue))
    assert_age(waiting, started)
    assert (scheduled["state"], scheduled["delayed"], scheduled["depth"]) == ("delayed", queue.scheduled_job_registry.count, 0)
    assert scheduled["delayed"] == 2 and DELAY_S - SLACK_S < due_in(scheduled) <= DELAY_S
    assert scheduled["oldest_age_s"] == 0.0  # overdue by nothing: the scheduler is on time
    assert found["rq:queue:orphans"]["depth"] == 1 and found["rq:queue:orphans"]["oldest_age_s"] is None
    assert client.exists("rq:deferred:emails") and not any(name.startswith(("rq:deferred", "rq:job:")) for name in found)
    assert result.value == result.data["waiting"] == 4 and result.data["delayed"] == 2


async def test_celery_waiting_eta_priority_and_reserved(redis_url: str) -> None:
    from celery import Celery

    app = Celery("warroom_test", broker=redis_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False

    @app.task(name="app.tasks.send_report")
    def send_report(n: int) -> int:
        return n

    try:
        for n in range(3):
            send_report.delay(n)
        send_report.apply_async((9,), countdown=DELAY_S)  # kombu keeps it in the list, eta in its headers
        send_report.apply_async((1,), priority=5)  # the priority-3 step's own list
        send_report.apply_async((2,), queue="reports")
        send_report.apply_async((3,), queue="reports")
        with app.connection_for_read() as connection:
            # What a worker does when it prefetches: the message moves to kombu's unacked hash
            # (and back to its queue when the connection closes, so read while it is open).
            message = connection.default_channel.basic_get("reports", no_ack=False)
            assert message is not None
            client = syncredis.Redis.from_url(redis_url)
            assert client.exists("_kombu.binding.celery", "_kombu.binding.reports", "unacked") == 3
            found = rows(await probe_queues(redis_url))
    finally:
        app.close()
    default, reports = found["celery"], found["reports"]
    assert (default["library"], default["depth"], default["delayed"]) == ("celery", 3, 1)
    assert DELAY_S - SLACK_S < due_in(default) <= DELAY_S
    assert default["oldest_age_s"] is None  # Celery messages carry no enqueue time: unknown, never 0
    assert found["celery\x06\x163"]["depth"] == 1 and found["celery\x06\x163"]["queue"] == "celery (priority 3)"
    assert reports["depth"] == 1 and reports["delayed"] == 0
    assert (found["unacked_index"]["state"], found["unacked_index"]["in_flight"]) == ("in_flight", 1)
    assert not [name for name in found if name.startswith("_kombu") or name == "unacked"]


async def test_celery_delayed_is_unknown_beyond_the_sample(redis_url: str) -> None:
    from celery import Celery

    app = Celery("warroom_test", broker=redis_url, set_as_current=False)
    try:
        for n in range(redis_queues.CELERY_SAMPLE + 5):
            app.send_task("app.tasks.resize", (n,), countdown=DELAY_S if n % 2 else None)
    finally:
        app.close()
    row = rows(await probe_queues(redis_url))["celery"]
    # Too many to read each refresh: all count as waiting and delayed is unknown, never a false 0.
    assert row["depth"] == redis_queues.CELERY_SAMPLE + 5 and row["delayed"] is None and row["next_due_in_s"] is None


async def test_dramatiq_waiting_and_delayed(redis_url: str) -> None:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url)
    started = time.time()
    try:
        @dramatiq.actor(queue_name="mail", broker=broker)
        def welcome(user: int) -> None:
            pass

        for user in range(3):
            welcome.send(user)
        welcome.send_with_options(args=(9,), delay=int(DELAY_S * 1000))
    finally:
        broker.close()
    client = syncredis.Redis.from_url(redis_url)
    assert client.exists("dramatiq:mail.msgs", "dramatiq:mail.DQ.msgs", "dramatiq:__heartbeats__") == 3
    found = rows(await probe_queues(redis_url))
    waiting, delayed = found["dramatiq:mail"], found["dramatiq:mail.DQ"]
    assert (waiting["library"], waiting["queue"], waiting["depth"]) == ("dramatiq", "mail", 3)
    assert_age(waiting, started)
    assert (delayed["state"], delayed["queue"], delayed["delayed"], delayed["depth"]) == ("delayed", "mail", 1, 0)
    assert DELAY_S - SLACK_S < due_in(delayed) <= DELAY_S
    assert set(found) == {"dramatiq:mail", "dramatiq:mail.DQ"}  # no .msgs hashes, no heartbeats


async def test_bullmq_wait_prioritized_delayed_and_events(redis_url: str) -> None:
    from bullmq import Queue

    queue = Queue("videos", {"connection": redis_url})
    started = time.time()
    try:
        for n in range(3):
            await queue.add("encode", {"n": n})
        await queue.add("encode", {"n": 9}, {"delay": int(DELAY_S * 1000)})
        await queue.add("encode", {"n": 10}, {"priority": 3})
        await queue.add("encode", {"n": 11}, {"priority": 1})
        counts = await queue.getJobCounts("wait", "prioritized", "delayed", "active")
    finally:
        await queue.close()
    client = syncredis.Redis.from_url(redis_url)
    assert client.type("bull:videos:events") == b"stream" and client.exists("bull:videos:marker")
    found = rows(await probe_queues(redis_url))
    wait, prioritized, delayed = found["bull:videos:wait"], found["bull:videos:prioritized"], found["bull:videos:delayed"]
    assert (wait["library"], wait["depth"], prioritized["depth"], delayed["delayed"]) == ("bullmq", counts["wait"], counts["prioritized"], counts["delayed"])
    assert (counts["wait"], counts["prioritized"], counts["delayed"]) == (3, 2, 1)
    assert_age(wait, started)
    assert_age(prioritized, started)
    assert DELAY_S - SLACK_S < due_in(delayed) <= DELAY_S and delayed["depth"] == 0
    assert found["bull:videos:active"]["in_flight"] == counts["active"] == 0
    assert "bull:videos:events" not in found and "bull:videos:marker" not in found  # not queues
    client.delete("bull:videos:1")  # the oldest waiting job's hash is gone: its age is unknown
    assert rows(await probe_queues(redis_url))["bull:videos:wait"]["oldest_age_s"] is None


async def test_sidekiq_documented_layout(redis_url: str) -> None:
    # There is no Python Sidekiq: these are the commands Sidekiq's client runs (Sidekiq::Client
    # #raw_push and its scheduled/retry sets), with the job JSON it writes.
    client = syncredis.Redis.from_url(redis_url)
    now = time.time()

    def job(n: int, **extra: Any) -> str:
        return json.dumps({"class": "WelcomeMailer", "args": [n], "retry": True, "queue": "default",
                           "jid": uuid.uuid4().hex[:24], "created_at": now, **extra})

    client.sadd("queues", "default")
    client.lpush("queue:default", job(1, enqueued_at=now - 30), job(2, enqueued_at=now - 5))
    client.zadd("schedule", {job(3): now + DELAY_S})
    client.zadd("retry", {job(4, retry_count=1, error_message="boom"): now + 30})
    client.zadd("dead", {job(5): now - 60})
    found = rows(await probe_queues(redis_url))
    assert (found["queue:default"]["library"], found["queue:default"]["depth"]) == ("sidekiq", 2)
    assert 30 <= found["queue:default"]["oldest_age_s"] < 30 + SLACK_S
    assert found["schedule"]["delayed"] == 1 and DELAY_S - SLACK_S < due_in(found["schedule"]) <= DELAY_S
    assert found["retry"]["delayed"] == 1 and found["retry"]["state"] == "delayed"
    assert "dead" not in found and "queues" not in found


async def test_streams_groups_lag_and_logs(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = syncredis.Redis.from_url(redis_url)
    ids = [client.xadd("orders", {"n": n}) for n in range(5)]
    client.xgroup_create("orders", "billing", id="0")
    client.xreadgroup("billing", "worker-1", {"orders": ">"}, count=2)  # 2 pending, 3 never delivered
    client.xadd("audit", {"n": 1})  # no group: a log nobody waits on
    result = await probe_queues(redis_url)
    found = rows(result)
    orders = found["orders"]
    assert (orders["library"], orders["lag"], orders["in_flight"], orders["depth"]) == ("stream", 3, 2, 3)
    first_s = int(ids[0].split(b"-")[0]) / 1000  # the oldest pending entry's id is its time
    assert orders["oldest_age_s"] is not None and 0 <= orders["oldest_age_s"] <= time.time() - first_s + 1
    assert found["audit"]["state"] == "log" and result.value == 3  # the log is not waiting work
    # Redis 6.2 reports no lag: it is counted up to a cap; past it, unknown (at least N), never 0.
    monkeypatch.setattr(redis_queues, "STREAM_LAG_CAP", 2)
    capped = rows(await probe_queues(redis_url))["orders"]
    version = client.info("server")["redis_version"]
    if version.startswith("6."):
        assert capped["lag"] is None and capped["groups"][0]["lag_at_least"] == 2 and capped["depth_at_least"]
    else:  # Redis 7 reports the lag itself: no count, no cap
        assert capped["lag"] == 3 and not capped["depth_at_least"]


def test_keys_a_worker_leaves_behind_are_not_queues() -> None:
    # Keys only a running worker writes (none runs in these tests): registries, dead sets,
    # acknowledgements, broadcast exchanges and locks are never read as queues.
    for key in ("rq:finished:emails", "rq:failed:emails", "rq:canceled:emails", "rq:deferred:emails", "rq:job:1",
                "rq:workers", "dead", "bull:videos:completed", "bull:videos:failed", "bull:videos:events",
                "bull:videos:marker", "bull:videos:stalled-check", "dramatiq:mail.XQ", "dramatiq:mail.XQ.msgs",
                "dramatiq:mail.msgs", "dramatiq:__acks__.w1.mail", "_kombu.binding.celery.pidbox",
                "_kombu.binding.celeryev", "_kombu.binding_permanent.celery", "unacked", "unacked_mutex"):
        assert queue_layouts.classify(key) == [], key
    assert [q.state for q in queue_layouts.classify("rq:wip:emails")] == ["in_flight"]
    assert [(q.key, q.state) for q in queue_layouts.classify("bull:videos:paused")] == [("bull:videos:paused", "waiting")]


# --- all of them in one Redis, as a shared broker has them -------------------------------------


async def test_every_library_in_one_redis_adds_up(redis_url: str) -> None:
    import rq
    from bullmq import Queue
    from celery import Celery

    client = syncredis.Redis.from_url(redis_url)
    rq_queue = rq.Queue("default", connection=client)
    for n in range(4):
        rq_queue.enqueue(add, n, n)
    rq_queue.enqueue_in(timedelta(seconds=DELAY_S), add, 0, 0)
    app = Celery("warroom_test", broker=redis_url, set_as_current=False)
    try:
        for n in range(2):
            app.send_task("app.tasks.resize", (n,))
    finally:
        app.close()
    bull = Queue("emails", {"connection": redis_url})
    try:
        for n in range(5):
            await bull.add("welcome", {"n": n})
        await bull.add("welcome", {"n": 9}, {"delay": int(DELAY_S * 1000)})
    finally:
        await bull.close()
    client.lpush("queue:mailers", json.dumps({"class": "X", "args": [], "jid": "j1", "enqueued_at": time.time()}))
    before = {key: client.type(key) for key in client.scan_iter(count=1000)}
    async with RecordingProxy(client.connection_pool.connection_kwargs["port"]) as proxy:
        result = await probe_queues(proxy.url())
    assert result.value == result.data["waiting"] == 4 + 2 + 5 + 1 and result.data["delayed"] == 2
    libraries = {row["library"] for row in result.data["queues"]}
    assert {"rq", "celery", "bullmq", "sidekiq"} <= libraries
    assert f"{result.value} waiting, 2 delayed" in result.summary
    # Reading every library's layout took reads only, and changed nothing.
    sent = {args[0].upper() for args in proxy.commands}
    assert {"LRANGE", "HMGET", "ZRANGE", "SSCAN"} <= sent and unread_commands(proxy.commands) == []
    assert {key: client.type(key) for key in client.scan_iter(count=1000)} == before


# --- what the Queues pane makes of it ------------------------------------------------------------


async def test_queues_pane_shows_waiting_delayed_and_counts_waiting_only(redis_url: str) -> None:
    import dataclasses

    import rq
    from bullmq import Queue

    from tests.tui import fixtures
    from tests.tui.conftest import main_screen_settled
    from tests.tui.test_cockpit import screen_text
    from tui.app import make_app
    from tui.scheduler import FixedSource

    client = syncredis.Redis.from_url(redis_url)
    emails = rq.Queue("emails", connection=client)
    for n in range(3):
        emails.enqueue(add, n, n)
    for _ in range(2):
        emails.enqueue_in(timedelta(seconds=DELAY_S), add, 0, 0)
    bull = Queue("videos", {"connection": redis_url})
    try:
        await bull.add("encode", {"n": 1})
        await bull.add("encode", {"n": 2}, {"delay": int(DELAY_S * 1000)})
    finally:
        await bull.close()
    live = await probe.queues(RedisTarget("redis", redis_url, scan_count=1000), timeout=5.0)
    assert live.value == 4
    results = [live if r.key == live.key else r for r in fixtures.incident_results()]
    results = [dataclasses.replace(r, timestamp=fixtures.NOW) if r is live else r for r in results]
    app = make_app(fixtures.environment(), source=FixedSource(results), clock=fixtures.clock)
    async with app.run_test(size=(140, 50)) as pilot:
        await main_screen_settled(pilot)
        text = screen_text(app)
    assert "rq emails  3 waiting" in text and "bullmq videos  1 waiting" in text
    assert "rq emails  2 delayed, next in" in text and "bullmq videos  1 delayed, next in" in text
    assert "4 jobs queued" in text  # the 3 delayed jobs are not in the pane's total
    assert "bullmq videos  0 in flight" not in text and "bull:videos:events" not in text
