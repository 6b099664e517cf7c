"""Job queues in Redis: finding them (Celery, RQ, Sidekiq, BullMQ, streams) and reading depth and age."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from probes.config import RedisTarget
from probes.result import ProbeResult, Status, grade, worst
from probes.thresholds import Thresholds

MAX_QUEUES = 200  # a pathological keyspace must not turn one refresh into thousands of reads
REGISTRY_COUNT = 500  # rq:queues / Sidekiq's `queues` sets name queues that may be empty right now
STREAM_LAG_CAP = 10_000  # Redis < 7 reports no group lag: count undelivered entries, up to this

Command = Callable[[Any], Any]  # queues one command on a redis-py pipeline
# A reader yields the commands it needs next and receives their replies (one pipeline per round).
Reader = Generator[list[Command], list[Any], None]


# key pattern -> (convention, type, role; None = the pattern's last group). Only these shapes are
# read as queues; anything else found by SCAN is ignored unless it is a stream.
_SHAPES: tuple[tuple[re.Pattern[str], str, str, str | None], ...] = (
    (re.compile(r"^rq:queue:([^:]+)$"), "rq", "list", "queue"),
    (re.compile(r"^queue:([^:]+)$"), "sidekiq", "list", "queue"),
    (re.compile(r"^(schedule|retry)$"), "sidekiq", "zset", None),
    (re.compile(r"^bull:(.+):(wait|active)$"), "bullmq", "list", None),
    (re.compile(r"^bull:(.+):(delayed)$"), "bullmq", "zset", None),
    (re.compile(r"^(celery)$"), "celery", "list", "queue"),
)
_BULL_MARKER = re.compile(r"^bull:(.+):(meta|id)$")  # persists while the queue's lists are empty
_KOMBU_BINDING = re.compile(r"^_kombu\.binding\.(.+)$")  # Celery declares every queue here


@dataclass(frozen=True, slots=True)
class Queue:
    key: str
    queue: str  # the application's name for it ("default" for rq:queue:default)
    convention: str  # celery / rq / sidekiq / bullmq / explicit / unknown
    type: str  # list / zset / stream; "" when an explicit key's type is not known yet
    role: str = "queue"  # queue / active / delayed / schedule / retry / stream
    explicit: bool = False


def classify(key: str) -> list[Queue]:
    """The queues a key name stands for under the common job-queue conventions."""
    for pattern, convention, kind, role in _SHAPES:
        if m := pattern.match(key):
            return [Queue(key, m[1], convention, kind, role or m[m.lastindex or 1])]
    if m := _BULL_MARKER.match(key):
        name = m[1]
        return [Queue(f"bull:{name}:wait", name, "bullmq", "list", "wait"),
                Queue(f"bull:{name}:active", name, "bullmq", "list", "active"),
                Queue(f"bull:{name}:delayed", name, "bullmq", "zset", "delayed")]
    if m := _KOMBU_BINDING.match(key):
        return [Queue(m[1], m[1], "celery", "list", "queue")]
    return []


def explicit_queue(key: str, known_type: str = "") -> Queue:
    shaped = classify(key)
    if shaped and shaped[0].key == key:
        return Queue(key, shaped[0].queue, shaped[0].convention, known_type or shaped[0].type, shaped[0].role, True)
    return Queue(key, key, "explicit", known_type, "stream" if known_type == "stream" else "queue", True)


class Discovery:
    """What queue discovery remembers between refreshes of one Session."""

    def __init__(self) -> None:
        self.cursor = 0  # SCAN resumes here: one bounded step per refresh covers big keyspaces
        self.known: dict[str, Queue] = {}  # discovered queues, kept while a full pass still sees them
        self.seen: set[str] = set()
        self.types: dict[str, str] = {}  # explicit key -> type, so TYPE is asked once


# --- timestamps ------------------------------------------------------------------------------


def epoch_s(value: Any) -> float | None:
    """A job timestamp in seconds: epoch s/ms/us as number or text, or ISO-8601 (UTC when naive)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    return value / 1e6 if value > 1e14 else value / 1e3 if value > 1e11 else float(value)


_STAMP_FIELDS = ("enqueued_at", "created_at", "timestamp", "ts")


def payload_stamp(raw: Any) -> float | None:
    """enqueued_at (Sidekiq) or a similar field of a JSON job; None when it carries none (Celery)."""
    try:
        job = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(job, dict):
        return None
    return next((s for f in _STAMP_FIELDS if (s := epoch_s(job.get(f))) is not None), None)


def _age(now: float, stamp: float | None) -> float | None:
    # A producer clock slightly ahead of ours is still "just enqueued", not unknown.
    return None if stamp is None else round(max(0.0, now - stamp), 3)


def _stream_ms(entry_id: Any) -> float | None:
    if not entry_id:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    head = text.split("-", 1)[0]
    return int(head) / 1000 if head.isdigit() and int(head) > 0 else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- the readers: generators that yield pipeline commands and receive their replies ------------


class QueueRun:
    """What one refresh found; readers write into it."""

    def __init__(self, state: Discovery, thresholds: Thresholds) -> None:
        self.state = state
        self.limits = thresholds.of("queues")
        self.now = time.time()
        self.server_now = self.now  # stream ids carry the server's clock; INFO tells it
        self.spawned: list[Reader] = []
        self.scheduled: dict[str, Queue] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.scanned: int | None = None
        self.pass_complete = False

    def schedule(self, queue: Queue) -> None:
        if queue.key in self.scheduled or len(self.scheduled) >= MAX_QUEUES:
            return
        self.scheduled[queue.key] = queue
        self.spawned.append(read_queue(queue, self))


def discover(run: QueueRun, scan_count: int) -> Reader:
    state = run.state
    cursor = state.cursor
    replies = yield [
        lambda p: p.scan(cursor, count=scan_count),
        # Same cursor and COUNT: the same buckets again, this time keeping only the streams.
        lambda p: p.scan(cursor, count=scan_count, _type="stream"),
        lambda p: p.sscan("rq:queues", 0, count=REGISTRY_COUNT),
        lambda p: p.sscan("queues", 0, count=REGISTRY_COUNT),  # Sidekiq's set of queue names
    ]
    found: list[Queue] = []
    if not isinstance(replies[0], Exception):
        state.cursor, keys = replies[0]
        run.scanned = len(keys)
        for key in keys:
            found += classify(_text(key))
    if not isinstance(replies[1], Exception):  # Redis < 6 has no SCAN ... TYPE
        found += [Queue(_text(k), _text(k), "unknown", "stream", "stream") for k in replies[1][1]]
    for reply, prefix in ((replies[2], ""), (replies[3], "queue:")):
        if not isinstance(reply, Exception):
            for member in reply[1]:
                found += classify(prefix + _text(member))
    for queue in found:
        state.seen.add(queue.key)
        state.known.setdefault(queue.key, queue)
        run.schedule(queue)
    if state.cursor == 0:
        # A full pass ended: forget queues it no longer saw (deleted, registry entry gone).
        state.known = {k: q for k, q in state.known.items() if k in state.seen}
        state.seen = set()
        run.pass_complete = True


def read_queue(queue: Queue, run: QueueRun) -> Reader:
    kind = queue.type
    if not kind:
        (reply,) = yield [lambda p: p.type(queue.key)]
        kind = _text(reply) if not isinstance(reply, Exception) else "none"
        if kind in ("list", "zset", "stream"):
            run.state.types[queue.key] = kind
    row: dict[str, Any] = {
        "name": queue.key, "queue": queue.queue, "type": kind, "convention": queue.convention,
        "role": queue.role, "explicit": queue.explicit, "depth": 0, "oldest_age_s": None,
        "pending": None, "lag": None, "groups": [],
    }
    if kind == "stream":
        row["role"] = "stream"
    if kind == "none":  # an empty list does not exist in Redis: depth 0 is a fact here
        row["type"] = run.state.types.get(queue.key, "none")
        row["oldest_age_s"] = None if queue.convention == "celery" else 0.0
    elif kind == "list":
        yield from _read_list(queue, row, run)
    elif kind == "zset":
        yield from _read_zset(queue, row, run)
    elif kind == "stream":
        yield from _read_stream(queue, row, run)
    else:
        row["error"] = f"{queue.key} is a {kind}, not a list, sorted set or stream"
    if row.pop("wrongtype", False):
        run.state.types.pop(queue.key, None)  # the key changed type: ask TYPE again next time
        if not queue.explicit:
            run.state.known.pop(queue.key, None)
            return  # a key that only looked like a queue
    run.rows[queue.key] = row


def _read_list(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    depth, first, last = yield [lambda p: p.llen(queue.key), lambda p: p.lindex(queue.key, 0), lambda p: p.lindex(queue.key, -1)]
    if isinstance(depth, ResponseError):
        row["wrongtype"], row["error"] = "WRONGTYPE" in str(depth), str(depth)[:120]
        return
    row["depth"] = depth
    if queue.convention == "celery" or queue.role == "active":
        return  # Celery messages carry no enqueue time: unknown, never a false 0
    # RQ pushes right and pops left (oldest at 0); Sidekiq, Celery and BullMQ push left, pop right.
    head = first if queue.convention == "rq" else last
    if not depth:
        row["oldest_age_s"] = 0.0  # nothing waits: a measured 0
        return
    if isinstance(head, Exception) or head is None:
        return
    if queue.convention in ("rq", "bullmq"):
        job = f"rq:job:{_text(head)}" if queue.convention == "rq" else f"bull:{queue.queue}:{_text(head)}"
        fields = ["enqueued_at", "created_at"] if queue.convention == "rq" else ["timestamp"]
        (values,) = yield [lambda p: p.hmget(job, fields)]
        if not isinstance(values, Exception):
            row["oldest_age_s"] = _age(run.now, next((s for v in values if (s := epoch_s(v))), None))
    else:
        stamps = [s for s in (payload_stamp(first), payload_stamp(last)) if s is not None]
        row["oldest_age_s"] = _age(run.now, min(stamps)) if stamps else None


def _read_zset(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    depth, lowest = yield [lambda p: p.zcard(queue.key), lambda p: p.zrange(queue.key, 0, 0, withscores=True)]
    if isinstance(depth, ResponseError):
        row["wrongtype"], row["error"] = "WRONGTYPE" in str(depth), str(depth)[:120]
        return
    row["depth"] = depth
    if not depth:
        row["oldest_age_s"] = 0.0
    elif not isinstance(lowest, Exception) and lowest:
        score = float(lowest[0][1])
        # Members are scored by when they are due; BullMQ packs ms * 4096 + a counter.
        due = score / 4096 / 1000 if queue.convention == "bullmq" and score > 1e15 else epoch_s(score)
        if due is not None:
            row["due_in_s"] = round(due - run.now, 3)
            row["oldest_age_s"] = _age(run.now, due)  # overdue seconds: 0 while nothing is due yet


def _read_stream(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    length, groups, info = yield [lambda p: p.xlen(queue.key), lambda p: p.xinfo_groups(queue.key), lambda p: p.xinfo_stream(queue.key)]
    if isinstance(length, ResponseError):
        row["wrongtype"], row["error"] = "WRONGTYPE" in str(length), str(length)[:120]
        return
    row["length"] = row["depth"] = length
    if isinstance(groups, Exception) or not groups:
        return  # no consumer group: a log, not a queue; nothing is waiting on anyone
    last_id = info.get("last-generated-id") if isinstance(info, dict) else None
    commands: list[Command] = []
    for g in groups:
        name, delivered = g["name"], g["last-delivered-id"]
        count = 1 if g.get("lag") is not None else STREAM_LAG_CAP
        if delivered == last_id:
            count = 0
        commands.append(lambda p, n=name: p.xpending(queue.key, n))
        commands.append(lambda p, d=delivered, c=count: p.xrange(queue.key, f"({_text(d)}", "+", count=max(c, 1)))
    replies = yield commands
    rows, ages = [], []
    for i, g in enumerate(groups):
        pending, after = replies[2 * i], replies[2 * i + 1]
        lag = g.get("lag")
        if g["last-delivered-id"] == last_id:
            lag, after = 0, []
        elif lag is None and not isinstance(after, Exception):
            lag = len(after)  # Redis < 7: count what was never delivered (capped)
        oldest = [_stream_ms(pending.get("min")) if isinstance(pending, dict) else None,
                  _stream_ms(after[0][0]) if after and not isinstance(after, Exception) else None]
        known = [s for s in oldest if s is not None]
        age = _age(run.server_now, min(known)) if known else 0.0  # nothing waiting: truly 0
        ages.append(age)
        rows.append({"name": _text(g["name"]), "consumers": g.get("consumers"), "pending": g.get("pending"),
                     "lag": lag, "last_delivered_id": _text(g["last-delivered-id"]), "oldest_age_s": age})
    row["groups"] = rows
    row["pending"] = sum(r["pending"] or 0 for r in rows)
    lags = [r["lag"] for r in rows if r["lag"] is not None]
    row["lag"] = max(lags) if lags else None
    # What waits on the slowest group is the stream's backlog, not XLEN (acked entries stay).
    row["depth"] = max((r["pending"] or 0) + (r["lag"] or 0) for r in rows)
    row["oldest_age_s"] = max((a for a in ages if a is not None), default=None)


def queues_result(target: RedisTarget, run: QueueRun, rounds: int) -> ProbeResult:
    limits = run.limits
    rows = [run.rows[k] for k in run.scheduled if k in run.rows]
    issues: list[tuple[Status, str]] = []
    for row in rows:
        # Scheduled/delayed work and jobs in progress are not a backlog; only their lateness is.
        graded = row["type"] in ("list", "stream") and row["role"] != "active" and not (row["type"] == "stream" and not row["groups"])
        depth_status = grade(row["depth"], limits["depth_warn"], limits["depth_fail"]) if graded else Status.OK
        age_status = grade(row["oldest_age_s"], limits["age_s_warn"], limits["age_s_fail"])
        row["status"] = str(worst((depth_status, age_status, Status.WARN if row.get("error") else Status.OK)))
        if row["status"] != "ok":
            age = f", oldest {row['oldest_age_s']:.0f} s" if row["oldest_age_s"] is not None else ""
            issues.append((Status(row["status"]), row.get("error") or f"{row['name']} depth {row['depth']}{age}"))
    total = sum(r["depth"] for r in rows)
    status = worst(s for s, _ in issues)
    issues.sort(key=lambda i: -i[0].rank)
    if issues:
        more = f" (+{len(issues) - 2} more)" if len(issues) > 2 else ""
        summary = f"{target.name}: " + "; ".join(text for _, text in issues[:2]) + more
    elif rows:
        summary = f"{target.name}: {len(rows)} queues, {total} waiting"
    else:
        summary = f"{target.name}: no queues configured or discovered"
    data = {"queues": rows, "scanned": run.scanned, "scan_count": target.scan_count, "scan_pass_complete": run.pass_complete,
            "truncated": len(run.scheduled) >= MAX_QUEUES, "round_trips": rounds}
    return ProbeResult(target.name, "redis", "queues", status, summary, value=total, data=data)
