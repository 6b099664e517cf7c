"""Every reading that is not ok, target by target, in the header's words ("api slow 1.3 s").

One problem per thing that is wrong, not per pane that shows it: one failing endpoint is one
problem (the Services and Latency panes both show it), and a target that is down is one
problem however many of its probes fail with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from probes.result import ProbeResult, Status
from probes.units import duration, duration_ms, size
from widgets.store import STATE_RANK, Reading, ResultStore

MAX_WORDS = 48  # characters of a problem taken from a probe's summary
MAX_NAMED = 3  # targets read less often than the refresh named in the header, the rest counted


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: its target, its state (warn/fail/error/stale) and how it reads."""

    target: str
    state: str
    text: str  # starts with the target's name


def _clause(result: ProbeResult) -> str:
    """The summary without its `target: ` prefix, first clause only, kept short."""
    text = result.summary
    prefix = f"{result.target}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    text = text.split("; ")[0].strip()
    return text if len(text) <= MAX_WORDS else text[: MAX_WORDS - 1].rstrip() + "…"


def _count(n: int, one: str, many: str) -> str:
    return one if n == 1 else f"{n} {many}"


def _http(result: ProbeResult) -> list[str]:
    data = result.data
    parts: list[str] = []
    code = data.get("status_code")
    # The probe names the code only when it is not the one expected; a 4xx/5xx is never fine.
    if code is not None and (f"HTTP {code}" in result.summary or code >= 400):
        parts.append(f"HTTP {code}")
    latency, warn = data.get("latency_ms"), data.get("latency_warn_ms")
    if latency is not None and warn is not None and latency >= warn:
        parts.append(f"slow {duration_ms(latency)}")
    if not parts:
        parts.append(_clause(result))
    return [" and ".join(parts)]


def _sessions(result: ProbeResult) -> list[str]:
    data = result.data
    if result.probe == "idle_in_transaction":
        found = data.get("sessions") or []
        if found:
            age = duration(found[0].get("idle_s"))
            return [f"{_count(len(found), 'idle in transaction', 'idle in transaction, longest')} {age}"]
    elif result.probe == "long_queries":
        found = data.get("queries") or []
        if found:
            age = duration(found[0].get("duration_s"))
            return [f"{_count(len(found), 'query running', 'queries running, longest')} {age}"]
    elif result.probe == "slow_statements" and result.value is not None:
        return [f"slow statements, mean {duration_ms(result.value)}"]
    elif result.probe == "connections" and data.get("total") is not None:
        return [f"connections {data['total']}/{data.get('max_connections', '?')}"]
    elif result.probe == "replication":
        return _replication(result) or [_clause(result)]
    return [_clause(result)]


def _replication(result: ProbeResult) -> list[str]:
    """`replica paused, replay 47 s behind` / `primary → replica 33.7 MiB behind`, never
    "1 replica(s), max lag ...": the header names which replica and how far."""
    data = result.data
    if data.get("role") == "replica":
        words = ["replay paused"] if data.get("replay_paused") else []
        if data.get("replay_delay_s") is not None:
            words.append(f"{duration(data['replay_delay_s'])} behind")
        return [", ".join(words)] if words else []
    found = []
    for replica in data.get("replicas") or []:
        if replica.get("lag_bytes") is not None:
            found.append(f"→ {replica.get('application_name') or replica.get('client_addr')} {size(replica['lag_bytes'])} behind")
    found += [f"→ {name} missing" for name in data.get("missing") or []]
    return found


def _queues(result: ProbeResult) -> list[str]:
    """`5 queues backed up, worst celery 935 waiting`: how many, and the worst by name (the
    summary's first clause named one queue and hid that four more were backed up)."""
    bad = [q for q in result.data.get("queues") or [] if q.get("status") in ("warn", "fail")]
    if len(bad) < 2:
        return [_clause(result)]
    worst = max(bad, key=lambda q: (q.get("status") == "fail", q.get("depth") or 0))
    return [f"{len(bad)} queues backed up, worst {worst.get('name')} {worst.get('depth')} waiting"]


def _containers(result: ProbeResult) -> list[tuple[str, str, str]]:
    """(name, state, words) of each container that is not ok."""
    found = []
    for container in result.data.get("containers") or []:
        state = str(container.get("status") or "ok")
        if state in ("warn", "fail"):
            found.append((str(container.get("name")), state, str(container.get("why") or container.get("state") or state)))
    return found


def describe(reading: Reading) -> list[tuple[str, str, str]]:
    """(target, state, text) of what is wrong with one reading; none when it is ok."""
    latest = reading.latest
    target = latest.target
    if reading.stale:
        # No reading now, whatever the old one said: an error first in the list ("payments
        # refused 16 s" before any warning), not a grey "stale" after the failures.
        return [(target, "error", f"{target} {reading.staleness}")]
    if latest.status is Status.OK:
        return []
    state = str(latest.status)
    if latest.status is Status.ERROR:
        words = "timeout" if latest.data.get("timeout") else _clause(latest)
        return [(target, state, f"{target} {words}")]
    if latest.kind == "docker" and latest.probe == "containers":
        found = _containers(latest)
        if found:
            return [(name, s, f"{name} {why}") for name, s, why in found]
    if latest.kind == "redis" and latest.probe == "queues":
        words = _queues(latest)
    else:
        words = _http(latest) if latest.kind == "http" else _sessions(latest) if latest.kind == "postgres" else [_clause(latest)]
    return [(target, state, f"{target} {w}") for w in words]


def problems(store: ResultStore) -> list[Problem]:
    """Every problem in the store, the worst first, then in the config's target order."""
    found: dict[tuple[str, str], Problem] = {}
    for key in store.latest:
        reading = store.reading(key)
        if reading is None:
            continue
        for target, state, text in describe(reading):
            # A target that is down fails every probe with the same words: one problem.
            seen = found.get((target, text))
            if seen is None or STATE_RANK.get(state, 0) > STATE_RANK.get(seen.state, 0):
                found[(target, text)] = Problem(target, state, text)
    return sorted(found.values(), key=lambda p: (-STATE_RANK.get(p.state, 0), store.order_of(p.target)))


def header_line(
    found: Iterable[Problem],
    *,
    waiting: int = 0,
    behind: str = "",
    skipping: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """(text, worst state) for the header: `2 problems: primary idle in transaction 1m47s;
    api slow 1.3 s (read every 2 s) · waiting for 1`; `all ok` only once every target has
    reported and none is wrong."""
    found = list(found)
    # While warroom is behind, every target is read less often: the behind line says why.
    skipping = {} if behind else dict(skipping or {})
    texts = []
    for problem in found:
        every = skipping.pop(problem.target, None)
        texts.append(problem.text + (f" (read every {every:g} s)" if every else ""))
    parts: list[str] = []
    if texts:
        # `; ` between problems: one may hold a comma ("3 blocked, longest 42 s").
        parts.append(f"{len(texts)} problem{'s' if len(texts) != 1 else ''}: " + "; ".join(texts))
    # Targets read less often than the refresh without being wrong (a round longer than the
    # refresh, under the latency lines): said too, a few by name.
    slow_rounds = [f"{name} read every {every:g} s" for name, every in skipping.items()]
    if len(slow_rounds) > MAX_NAMED:
        slow_rounds = [*slow_rounds[: MAX_NAMED - 1], f"{len(slow_rounds) - MAX_NAMED + 1} more read less often"]
    parts += slow_rounds
    if waiting:
        parts.append(f"waiting for {waiting}")
    if behind:
        parts.append(behind)
    worst = max((p.state for p in found), key=lambda s: STATE_RANK.get(s, 0), default="ok")
    return (" · ".join(parts) or "all ok"), worst


def waiting_for(store: ResultStore, expected: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (kind, target) pairs with no reading yet."""
    reported = {(key[0], key[1]) for key in store.latest}
    return [pair for pair in expected if pair not in reported]

