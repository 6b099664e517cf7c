"""Which keys hold a Redis instance's memory: a bounded SCAN sampled with MEMORY USAGE.

`redis-cli --memkeys` walks the whole keyspace; a cockpit cannot. The `memory_top` probe takes
a sample instead, at most every SAMPLE_EVERY_S per Session (sooner once memory turns warn or
fail): SCAN steps of SCAN_COUNT keys, at most MAX_KEYS keys, each measured with `MEMORY USAGE
key SAMPLES 5` in the same pipelines (SAMPLES 0 would walk every element of a big hash or list
and block the server). It reports the biggest keys, the biggest key prefixes and how many keys
it examined out of DBSIZE, so the operator knows it is a sample. Read commands only: SCAN,
MEMORY USAGE, TYPE, DBSIZE. The cursor carries over between samples, so repeated samples
cover a big keyspace; the biggest keys found so far are measured again each time (a deleted
key drops out).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from probes.result import ProbeResult, Status
from probes.secrets import redact
from probes.units import count, size

KIND = "redis"
PROBE = "memory_top"
SAMPLE_EVERY_S = 30.0  # it is not cheap: up to MAX_KEYS MEMORY USAGE calls
PRESSURE_RESAMPLE_S = 5.0  # memory just turned warn/fail: a fresh sample this soon
SCAN_COUNT = 200
MAX_KEYS = 2000
USAGE_SAMPLES = 5  # nested elements MEMORY USAGE samples (Redis's own default)
TOP_KEYS = 10
TOP_PREFIXES = 10
BUDGET_S = 0.5  # of one refresh, at most; a sample cut short says so
KEY_CHARS = 120
SEPARATORS = (":", "{")


def prefix(key: str) -> str:
    """A key's group: its first two `:`-separated parts when it has three or more
    (`warroom:ballast:17` -> `warroom:ballast:*`, `rq:job:ab12` -> `rq:job:*`), else its first
    part (`user:42` -> `user:*`); up to a `{` hash tag (`{tenant7}:cart` -> `{*`). A key with
    no separator is its own group."""
    brace = key.find("{")
    parts = key.split(":")
    if brace == 0:
        return "{*"
    if len(parts) >= 3:
        head = f"{parts[0]}:{parts[1]}:"
    elif len(parts) == 2:
        head = f"{parts[0]}:"
    else:
        head = key
    if 0 < brace < len(head):
        head = key[:brace + 1]
    return f"{head}*" if head != key else key


def _text(raw: Any) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return redact(text if len(text) <= KEY_CHARS else text[: KEY_CHARS - 1] + "…")


class MemorySampler:
    """What the sampler remembers between refreshes of one Session."""

    def __init__(self) -> None:
        self.cursor = 0
        self.last: ProbeResult | None = None
        self.last_at = 0.0  # time.monotonic() of the last sample
        self.last_pressure = False
        self.biggest: dict[bytes, int] = {}  # carried over: measured again in every sample

    def due(self, pressure: bool, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.last is None or now - self.last_at >= SAMPLE_EVERY_S:
            return True
        # Memory just crossed a line: name the culprit now, not half a minute later.
        return pressure and not self.last_pressure and now - self.last_at >= PRESSURE_RESAMPLE_S


async def sample(client: Any, state: MemorySampler, budget_s: float) -> dict[str, Any]:
    """One bounded sample; the facts of the `memory_top` result. Raises on a Redis error."""
    started = time.monotonic()
    deadline = started + budget_s
    sizes: dict[bytes, int] = {}
    examined, rounds, stopped = 0, 0, ""
    cursor, start_cursor, wrapped = state.cursor, state.cursor, False
    carried = list(state.biggest)
    pending: list[bytes] = []
    keys: list[bytes] = []
    dbsize: int | None = None
    try:
        async with asyncio.timeout(budget_s):
            while True:
                pipe = client.pipeline(transaction=False)
                scanning = not wrapped and examined + len(pending) < MAX_KEYS
                if rounds == 0:
                    pipe.dbsize()
                if scanning:
                    pipe.scan(cursor, count=min(SCAN_COUNT, MAX_KEYS - examined - len(pending)))
                measure = pending + (carried if rounds == 0 else [])
                for key in measure:
                    pipe.memory_usage(key, samples=USAGE_SAMPLES)
                if not len(pipe):
                    break
                replies = await pipe.execute(raise_on_error=True)
                rounds += 1
                position = 0
                if rounds == 1:
                    dbsize, position = int(replies[0]), 1
                if scanning:
                    cursor, keys = replies[position]
                    cursor = int(cursor)
                    position += 1
                for key, used in zip(measure, replies[position:], strict=True):
                    if used is not None:  # None: the key expired or was deleted meanwhile
                        sizes[key] = int(used)
                examined += len(pending)
                pending = [k for k in keys if k not in sizes] if scanning else []
                if scanning and cursor == 0:
                    wrapped = True  # the end of the keyspace: this sample stops here
                if time.monotonic() >= deadline - 0.02 and pending:
                    stopped = "stopped at the time budget"
                    break
    except TimeoutError:
        stopped = "stopped at the time budget"
    state.cursor = cursor
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
    state.biggest = dict(ranked[:TOP_KEYS])
    groups: dict[str, list[int]] = {}
    for key, used in sizes.items():
        group = groups.setdefault(prefix(_text(key)), [0, 0])
        group[0] += 1
        group[1] += used
    total = sum(sizes.values())
    top_prefixes = [
        {"prefix": name, "head": name.removesuffix("*"), "keys": n, "bytes": used,
         "share": round(used / total, 4) if total else 0.0}
        for name, (n, used) in sorted(groups.items(), key=lambda kv: -kv[1][1])[:TOP_PREFIXES]
    ]
    return {
        "top_keys": [{"key": _text(k), "bytes": used} for k, used in ranked[:TOP_KEYS]],
        "top_prefixes": top_prefixes,
        "bytes_sampled": total,
        "keys_sampled": len(sizes),
        "dbsize": dbsize,
        "complete": wrapped and start_cursor == 0 and not stopped,
        "stopped": stopped,
        "round_trips": rounds,
        "samples": USAGE_SAMPLES,
        "sample_ms": round((time.monotonic() - started) * 1000, 1),
    }


def result(target: str, data: dict[str, Any], *, taken_at: float) -> ProbeResult:
    """The `memory_top` reading: informational (ok); the `memory` probe grades the usage."""
    data = {**data, "taken_at": taken_at, "age_s": 0.0}
    keys, dbsize = data["keys_sampled"], data["dbsize"]
    of = f"{count(keys)} of {count(dbsize)} keys" if dbsize is not None else f"{count(keys)} keys"
    if not data["top_prefixes"]:
        return ProbeResult(target, KIND, PROBE, Status.OK, f"{target}: no keys to sample ({of})", value=0.0, data=data)
    top, big = data["top_prefixes"][0], data["top_keys"][0]
    summary = (f"{target}: {top['prefix']} holds {size(top['bytes'])} ({top['share']:.0%} of "
               f"{size(data['bytes_sampled'])} sampled in {of}); biggest key {big['key']} {size(big['bytes'])}")
    if data["stopped"]:
        summary += f" ({data['stopped']})"
    return ProbeResult(target, KIND, PROBE, Status.OK, summary, value=float(data["bytes_sampled"]), data=data)


def error(target: str, message: str) -> ProbeResult:
    return ProbeResult(target, KIND, PROBE, Status.ERROR, redact(f"{target}: memory sample failed: {message}"))


async def memory_top(target_name: str, client: Any, state: MemorySampler, *, pressure: bool,
                     remaining_s: float, describe: Callable[[BaseException], str]) -> ProbeResult:
    """The last sample, or a new one when due and the refresh has time left for it."""
    budget = min(BUDGET_S, remaining_s)
    if state.last is not None and (not state.due(pressure) or budget < 0.05):
        # This refresh's reading of the last sample: its age in the data, its facts unchanged.
        taken = state.last.data.get("taken_at") or time.time()
        return replace(state.last, timestamp=time.time(), data={**state.last.data, "age_s": round(time.time() - taken, 1)})
    if budget < 0.05:  # not a finding about Redis: say so without alarming anyone
        return ProbeResult(target_name, KIND, PROBE, Status.OK, f"{target_name}: biggest keys not sampled yet "
                           "(no time left in this refresh)", data={"top_keys": [], "top_prefixes": [], "sampled": False})
    try:
        data = await sample(client, state, budget)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - INFO and the queues already read must still show
        return error(target_name, describe(exc))
    state.last = result(target_name, data, taken_at=time.time())
    state.last_at, state.last_pressure = time.monotonic(), pressure
    return state.last
