"""Job queues in Redis: finding them (Celery, RQ, Sidekiq, BullMQ, Dramatiq, streams) and reading
what waits, what is delayed until when, and what is in flight, with the oldest waiting job's age."""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import ResponseError

from probes.config import RedisTarget
from probes.queue_layouts import (
    BULL_DELAY_SHIFT,
    BULL_EVENTS,
    BULL_PRIORITY_SHIFT,
    CELERY_SAMPLE,
    DELAYED,
    DELAYED_SAMPLE,
    IN_FLIGHT,
    LOG,
    MAX_QUEUES,
    REGISTRY_COUNT,
    STREAM_LAG_CAP,
    WAITING,
    Command,
    Discovery,
    Queue,
    Reader,
    as_text,
    celery_eta,
    classify,
    dramatiq_eta,
    epoch_s,
    job_age,
    payload_stamp,
    stream_ms,
)
from probes.result import ProbeResult, Status, grade, worst
from probes.thresholds import Thresholds

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
            found += classify(as_text(key))
    if not isinstance(replies[1], Exception):  # Redis < 6 has no SCAN ... TYPE
        streams = (as_text(k) for k in replies[1][1])
        found += [Queue(k, k, "unknown", "stream", "stream") for k in streams if not BULL_EVENTS.match(k)]
    for reply, prefix in ((replies[2], ""), (replies[3], "queue:")):
        if not isinstance(reply, Exception):
            for member in reply[1]:
                found += classify(prefix + as_text(member))
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
        kind = as_text(reply) if not isinstance(reply, Exception) else "none"
        if kind in ("list", "zset", "stream"):
            run.state.types[queue.key] = kind
    state = queue.state
    # depth counts waiting jobs only; delayed and in-flight jobs have their own counts.
    row: dict[str, Any] = {
        "name": queue.key, "queue": queue.queue, "type": kind, "convention": queue.convention,
        "library": "stream" if kind == "stream" and queue.convention in ("explicit", "unknown") else queue.convention,
        "role": "stream" if kind == "stream" else queue.role, "state": state, "explicit": queue.explicit,
        "depth": 0, "oldest_age_s": None, "delayed": 0 if state == DELAYED else None, "next_due_in_s": None,
        "in_flight": 0 if state == IN_FLIGHT else None, "pending": None, "lag": None, "groups": [],
    }
    if kind == "none":  # an empty list does not exist in Redis: nothing waits, a fact
        row["type"] = run.state.types.get(queue.key, "none")
        row["oldest_age_s"] = None if queue.convention == "celery" or state != WAITING else 0.0
        if queue.convention == "celery" and state == WAITING:
            row["delayed"] = 0
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


def _failed(row: dict[str, Any], reply: Any) -> bool:
    """Whether a count could not be read; the row then says why (its 0 is not a measurement)."""
    if isinstance(reply, Exception):
        row["wrongtype"] = isinstance(reply, ResponseError) and "WRONGTYPE" in str(reply)
        row["error"] = f"{row['name']}: {str(reply)[:120]}"
        return True
    return False


def _count(row: dict[str, Any], state: str, n: int) -> None:
    row["depth" if state == WAITING else "delayed" if state == DELAYED else "in_flight"] = n


def _read_list(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    key, library, state = queue.key, queue.convention, queue.state
    if library == "celery":
        (depth,) = yield [lambda p: p.llen(key)]
    elif library == "dramatiq" and state == DELAYED:
        depth, oldest = yield [lambda p: p.llen(key), lambda p: p.lrange(key, 0, DELAYED_SAMPLE - 1)]
    else:
        depth, first, last = yield [lambda p: p.llen(key), lambda p: p.lindex(key, 0), lambda p: p.lindex(key, -1)]
    if _failed(row, depth):
        return
    _count(row, state, depth)
    if state == IN_FLIGHT:
        return
    if library == "celery":
        # Celery messages carry no enqueue time: the oldest age is unknown, never a false 0.
        # Messages are read only while there are few (their size is the application's).
        row["delayed"] = 0 if not depth else None  # more than CELERY_SAMPLE: may hide ETA tasks
        if 0 < depth <= CELERY_SAMPLE:
            (messages,) = yield [lambda p: p.lrange(key, 0, CELERY_SAMPLE - 1)]
            if not isinstance(messages, Exception) and len(messages) == depth:
                etas = [eta for raw in messages if (eta := celery_eta(raw)) is not None and eta > run.now]
                row["depth"], row["delayed"] = depth - len(etas), len(etas)
                row["next_due_in_s"] = round(min(etas) - run.now, 3) if etas else None
        return
    if library == "dramatiq" and state == DELAYED:
        # Not sorted by due time: the next one is known only when every delayed message is read.
        if 0 < depth <= DELAYED_SAMPLE and not isinstance(oldest, Exception) and oldest:
            ids = [as_text(i) for i in oldest]
            (bodies,) = yield [lambda p: p.hmget(f"{key}.msgs", ids)]
            etas = [] if isinstance(bodies, Exception) else [dramatiq_eta(b) for b in bodies]
            if len(etas) == depth and None not in etas:
                row["next_due_in_s"] = round(min(e for e in etas if e is not None) - run.now, 3)
                row["oldest_age_s"] = job_age(run.now, min(e for e in etas if e is not None))  # overdue
        return
    if not depth:
        if state == WAITING:
            row["oldest_age_s"] = 0.0  # nothing waits: a measured 0
        return
    # RQ and Dramatiq push right and pop left (oldest at 0); Sidekiq and BullMQ push left, pop right.
    head = first if library in ("rq", "dramatiq") else last
    if isinstance(head, Exception) or head is None:
        return
    if library in ("rq", "bullmq", "dramatiq"):
        job = {"rq": f"rq:job:{as_text(head)}", "bullmq": f"bull:{queue.queue}:{as_text(head)}",
               "dramatiq": f"dramatiq:{queue.queue}.msgs"}[library]
        fields = {"rq": ["enqueued_at", "created_at"], "bullmq": ["timestamp"], "dramatiq": [as_text(head)]}[library]
        (values,) = yield [lambda p: p.hmget(job, fields)]
        if not isinstance(values, Exception):
            if library == "dramatiq":
                values = [payload_stamp(values[0])] if values and values[0] else []
            # A job hash that is gone (expired, deleted) leaves the age unknown, never 0.
            row["oldest_age_s"] = job_age(run.now, next((s for v in values if (s := epoch_s(v))), None))
    else:
        stamps = [s for s in (payload_stamp(first), payload_stamp(last)) if s is not None]
        row["oldest_age_s"] = job_age(run.now, min(stamps)) if stamps else None


def _read_zset(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    key, state = queue.key, queue.state
    prioritized = queue.role == "prioritized"
    last = DELAYED_SAMPLE - 1 if prioritized else 0
    depth, lowest = yield [lambda p: p.zcard(key), lambda p: p.zrange(key, 0, last, withscores=True)]
    if _failed(row, depth):
        return
    _count(row, state, depth)
    if not depth or isinstance(lowest, Exception) or not lowest:
        if state == WAITING:
            row["oldest_age_s"] = 0.0 if not depth else None
        return
    if prioritized:
        # Scored by priority, then by a counter that grows with each job: the oldest job has
        # the lowest counter, known only when every member was read.
        if depth > DELAYED_SAMPLE:
            return
        oldest = min(lowest, key=lambda m: float(m[1]) % BULL_PRIORITY_SHIFT)[0]
        (values,) = yield [lambda p: p.hmget(f"bull:{queue.queue}:{as_text(oldest)}", ["timestamp"])]
        if not isinstance(values, Exception):
            row["oldest_age_s"] = job_age(run.now, epoch_s(values[0]))
        return
    score = float(lowest[0][1])
    if state == IN_FLIGHT:
        return
    # Members are scored by when they are due (epoch s); BullMQ packs ms * 4096 + a counter.
    due = score / BULL_DELAY_SHIFT / 1000 if queue.convention == "bullmq" and score > 1e15 else epoch_s(score)
    if due is not None:
        row["next_due_in_s"] = round(due - run.now, 3)
        row["oldest_age_s"] = job_age(run.now, due)  # overdue seconds: 0 while nothing is due yet


def _read_stream(queue: Queue, row: dict[str, Any], run: QueueRun) -> Reader:
    length, groups, info = yield [lambda p: p.xlen(queue.key), lambda p: p.xinfo_groups(queue.key), lambda p: p.xinfo_stream(queue.key)]
    if _failed(row, length):
        return
    row["length"] = row["depth"] = length
    if isinstance(groups, Exception) or not groups:
        row["state"] = LOG  # no consumer group: a log, not a queue; nothing is waiting on anyone
        return
    last_id = info.get("last-generated-id") if isinstance(info, dict) else None
    commands: list[Command] = []
    for g in groups:
        name, delivered = g["name"], g["last-delivered-id"]
        count = 1 if g.get("lag") is not None else STREAM_LAG_CAP
        if delivered == last_id:
            count = 0
        commands.append(lambda p, n=name: p.xpending(queue.key, n))
        commands.append(lambda p, d=delivered, c=count: p.xrange(queue.key, f"({as_text(d)}", "+", count=max(c, 1)))
    replies = yield commands
    rows, ages = [], []
    for i, g in enumerate(groups):
        pending, after = replies[2 * i], replies[2 * i + 1]
        lag, at_least = g.get("lag"), False
        if g["last-delivered-id"] == last_id:
            lag, after = 0, []
        elif lag is None and not isinstance(after, Exception):
            lag = len(after)  # Redis < 7: count what was never delivered (capped)
            at_least = lag >= STREAM_LAG_CAP
        oldest = [stream_ms(pending.get("min")) if isinstance(pending, dict) else None,
                  stream_ms(after[0][0]) if after and not isinstance(after, Exception) else None]
        known = [s for s in oldest if s is not None]
        waiting = (g.get("pending") or 0) + (lag or 0)
        # Nothing waiting: truly 0; something waiting whose id we could not read: unknown.
        age = job_age(run.server_now, min(known)) if known else (0.0 if waiting == 0 and lag is not None else None)
        ages.append(age)
        rows.append({"name": as_text(g["name"]), "consumers": g.get("consumers"), "pending": g.get("pending"),
                     "lag": None if at_least else lag, "lag_at_least": lag if at_least else None,
                     "last_delivered_id": as_text(g["last-delivered-id"]), "oldest_age_s": age})
    row["groups"] = rows
    row["pending"] = row["in_flight"] = sum(r["pending"] or 0 for r in rows)
    lags = [r["lag"] for r in rows if r["lag"] is not None]
    row["lag"] = max(lags) if lags and len(lags) == len(rows) else None
    # What the slowest group has not been given yet is the stream's backlog, not XLEN (acked
    # entries stay); delivered, unacknowledged entries are in flight (their age still counts).
    row["depth"] = max((r["lag"] if r["lag"] is not None else r["lag_at_least"] or 0) for r in rows)
    row["depth_at_least"] = any(r["lag_at_least"] for r in rows)
    row["oldest_age_s"] = max((a for a in ages if a is not None), default=None)


def queues_result(target: RedisTarget, run: QueueRun, rounds: int) -> ProbeResult:
    limits = run.limits
    rows = [run.rows[k] for k in run.scheduled if k in run.rows]
    issues: list[tuple[Status, str]] = []
    for row in rows:
        # Delayed work and jobs in progress are not a backlog; only their lateness is.
        graded = row["state"] == WAITING
        depth_status = grade(row["depth"], limits["depth_warn"], limits["depth_fail"]) if graded else Status.OK
        age_status = grade(row["oldest_age_s"], limits["age_s_warn"], limits["age_s_fail"]) if row["state"] in (WAITING, DELAYED) else Status.OK
        row["status"] = str(worst((depth_status, age_status, Status.WARN if row.get("error") else Status.OK)))
        if row["status"] != "ok":
            age = f", oldest {row['oldest_age_s']:.0f} s" if row["oldest_age_s"] is not None else ""
            if row["state"] == DELAYED:
                text = f"{row['name']} {row['delayed']} delayed, overdue {row['oldest_age_s']:.0f} s"
            else:
                text = f"{row['name']} depth {row['depth']}{age}"
            issues.append((Status(row["status"]), row.get("error") or text))
    total = sum(r["depth"] for r in rows if r["state"] == WAITING)  # waiting jobs only
    delayed = sum(r["delayed"] or 0 for r in rows)
    status = worst(s for s, _ in issues)
    issues.sort(key=lambda i: -i[0].rank)
    if issues:
        more = f" (+{len(issues) - 2} more)" if len(issues) > 2 else ""
        summary = f"{target.name}: " + "; ".join(text for _, text in issues[:2]) + more
    elif rows:
        summary = f"{target.name}: {len(rows)} queues, {total} waiting" + (f", {delayed} delayed" if delayed else "")
    else:
        summary = f"{target.name}: no queues configured or discovered"
    data = {"queues": rows, "waiting": total, "delayed": delayed, "scanned": run.scanned, "scan_count": target.scan_count,
            "scan_pass_complete": run.pass_complete, "truncated": len(run.scheduled) >= MAX_QUEUES, "round_trips": rounds}
    return ProbeResult(target.name, "redis", "queues", status, summary, value=total, data=data)
