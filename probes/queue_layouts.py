"""Where each job library keeps its queues in Redis (key shapes, roles) and how its payloads
date a job: the knowledge the queue readers (probes/redis_queues.py) apply."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_QUEUES = 200  # a pathological keyspace must not turn one refresh into thousands of reads
REGISTRY_COUNT = 500  # rq:queues / Sidekiq's `queues` sets name queues that may be empty right now
STREAM_LAG_CAP = 10_000  # Redis < 7 reports no group lag: count undelivered entries, up to this
# Celery keeps countdown/ETA tasks in the queue list itself: a list of at most this many
# messages is read to tell them apart; a longer one counts all as waiting, delayed unknown.
CELERY_SAMPLE = 25
DELAYED_SAMPLE = 50  # ids read to find the next due job where a delayed set is not sorted by it
BULL_DELAY_SHIFT = 4096  # BullMQ scores delayed jobs due_ms * 0x1000 + a counter
BULL_PRIORITY_SHIFT = 2**32  # ... and prioritized jobs priority * 2^32 + a counter

Command = Callable[[Any], Any]  # queues one command on a redis-py pipeline
# A reader yields the commands it needs next and receives their replies (one pipeline per round).
Reader = Generator[list[Command], list[Any], None]

# What a role means to the operator: waiting jobs are the backlog (the pane's total), delayed
# jobs are due later, in-flight jobs are being worked on; a stream without groups is a log.
WAITING, DELAYED, IN_FLIGHT, LOG = "waiting", "delayed", "in_flight", "log"
STATES = {"queue": WAITING, "wait": WAITING, "paused": WAITING, "prioritized": WAITING, "stream": WAITING,
          "delayed": DELAYED, "scheduled": DELAYED, "schedule": DELAYED, "retry": DELAYED,
          "active": IN_FLIGHT, "wip": IN_FLIGHT, "reserved": IN_FLIGHT}


# key pattern -> (library, type, role; None = the pattern's last group). Only these shapes are
# read as queues; anything else found by SCAN is ignored unless it is a stream. Not queues, so
# not here: RQ's finished/failed/deferred/canceled registries, Sidekiq's dead set, BullMQ's
# completed/failed/marker/events keys, Dramatiq's .msgs hashes and .XQ dead letters, kombu's
# _kombu.binding.* sets (they name Celery's queues) and its unacked hash.
_SHAPES: tuple[tuple[re.Pattern[str], str, str, str | None], ...] = (
    (re.compile(r"^rq:queue:([^:]+)$"), "rq", "list", "queue"),
    (re.compile(r"^rq:(scheduled|wip):([^:]+)$"), "rq", "zset", "rq"),
    (re.compile(r"^queue:([^:]+)$"), "sidekiq", "list", "queue"),
    (re.compile(r"^(schedule|retry)$"), "sidekiq", "zset", None),
    (re.compile(r"^bull:(.+):(wait|active|paused)$"), "bullmq", "list", None),
    (re.compile(r"^bull:(.+):(delayed|prioritized)$"), "bullmq", "zset", None),
    (re.compile(r"^dramatiq:(?!__)([^:]+)\.DQ$"), "dramatiq", "list", "delayed"),
    (re.compile(r"^dramatiq:(?!__)(?![^:]*\.(?:msgs|XQ)$)([^:]+)$"), "dramatiq", "list", "queue"),
    (re.compile(r"^(celery)$"), "celery", "list", "queue"),
    (re.compile(r"^(.+)\x06\x16(\d+)$", re.S), "celery", "list", "queue"),  # a priority level's list
    (re.compile(r"^unacked_(index)$"), "celery", "zset", "reserved"),  # kombu: delivered, not acked
)
_BULL_MARKER = re.compile(r"^bull:(.+):(meta|id)$")  # persists while the queue's lists are empty
BULL_EVENTS = re.compile(r"^bull:.+:events$")  # BullMQ's event log: a stream, never a queue
_KOMBU_BINDING = re.compile(r"^_kombu\.binding\.(.+)$")  # Celery declares every queue here
# Celery's own broadcast exchanges: delivered by PUBLISH, no list behind them.
_KOMBU_BROADCAST = re.compile(r"(^celeryev$|\.pidbox$)")


@dataclass(frozen=True, slots=True)
class Queue:
    key: str
    queue: str  # the application's name for it ("default" for rq:queue:default)
    convention: str  # the library: celery / rq / sidekiq / bullmq / dramatiq; explicit / unknown
    type: str  # list / zset / stream; "" when an explicit key's type is not known yet
    role: str = "queue"  # queue / wait / paused / prioritized / active / delayed / scheduled / ...
    explicit: bool = False

    @property
    def state(self) -> str:
        return STATES.get(self.role, WAITING)


def classify(key: str) -> list[Queue]:
    """The queues a key name stands for under the common job-queue conventions."""
    for pattern, convention, kind, role in _SHAPES:
        if m := pattern.match(key):
            if convention == "rq" and role == "rq":
                return [Queue(key, m[2], "rq", kind, m[1])]
            if convention == "celery" and m.lastindex == 2:
                return [Queue(key, f"{m[1]} (priority {m[2]})", "celery", kind, role or "queue")]
            if role == "reserved":
                return [Queue(key, "reserved", "celery", kind, role)]
            return [Queue(key, m[1], convention, kind, role or m[m.lastindex or 1])]
    if m := _BULL_MARKER.match(key):
        name = m[1]
        return [Queue(f"bull:{name}:wait", name, "bullmq", "list", "wait"),
                Queue(f"bull:{name}:prioritized", name, "bullmq", "zset", "prioritized"),
                Queue(f"bull:{name}:active", name, "bullmq", "list", "active"),
                Queue(f"bull:{name}:delayed", name, "bullmq", "zset", "delayed")]
    if (m := _KOMBU_BINDING.match(key)) and not _KOMBU_BROADCAST.search(m[1]):
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


_STAMP_FIELDS = ("enqueued_at", "created_at", "timestamp", "ts", "message_timestamp")


def _json(raw: Any) -> dict[str, Any] | None:
    try:
        job = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return job if isinstance(job, dict) else None


def payload_stamp(raw: Any) -> float | None:
    """enqueued_at (Sidekiq), message_timestamp (Dramatiq) or a similar field of a JSON job;
    None when it carries none (Celery)."""
    job = _json(raw) or {}
    return next((s for f in _STAMP_FIELDS if (s := epoch_s(job.get(f))) is not None), None)


def celery_eta(raw: Any) -> float | None:
    """When a Celery message's countdown/ETA falls due; None for a task to run now."""
    headers = (_json(raw) or {}).get("headers")
    return epoch_s(headers.get("eta")) if isinstance(headers, dict) else None


def dramatiq_eta(raw: Any) -> float | None:
    options = (_json(raw) or {}).get("options")
    return epoch_s(options.get("eta")) if isinstance(options, dict) else None


def job_age(now: float, stamp: float | None) -> float | None:
    # A producer clock slightly ahead of ours is still "just enqueued", not unknown.
    return None if stamp is None else round(max(0.0, now - stamp), 3)


def stream_ms(entry_id: Any) -> float | None:
    if not entry_id:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    head = text.split("-", 1)[0]
    return int(head) / 1000 if head.isdigit() and int(head) > 0 else None


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
