"""The cockpit's model of probe readings: latest, last good, and bounded history per series."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from probes.result import ProbeResult, Status
from probes.units import duration, size

Key = tuple[str, str, str]  # (kind, target, probe)
SeriesKey = tuple[str, ...]  # a probe key, optionally followed by an item name
HISTORY = 300  # points per series: 5 minutes at a 1 s refresh, whatever the uptime


@dataclass(frozen=True, slots=True)
class Reading:
    """What a pane shows for one probe: the data to draw and how fresh it is.

    `result` is the last good reading when the latest one failed to arrive (error/timeout),
    so panes keep showing it; `stale` then says so, with `age_s` since it was taken.
    """

    result: ProbeResult
    latest: ProbeResult
    stale: bool
    age_s: float

    @property
    def state(self) -> str:
        """One of ok / warn / fail / error / stale: the colour an operator sees."""
        if self.stale:
            return "stale"
        return str(self.latest.status)

    @property
    def staleness(self) -> str:
        """`timeout 12s` / `stale 12s`: why and since when the data on screen is old."""
        word = "timeout" if self.latest.data.get("timeout") else "stale"
        return f"{word} {format_age(self.age_s)}"


STATE_RANK = {"ok": 0, "warn": 1, "stale": 2, "fail": 3, "error": 4}
# The order panes list rows in: problems first (fail, error, old data, warn), then the rest.
LIST_ORDER = {"fail": 0, "error": 1, "stale": 2, "warn": 3}


def worst_state(states: Iterable[str]) -> str:
    return max(states, key=lambda s: STATE_RANK.get(s, 0), default="ok")


def list_rank(state: str) -> int:
    """A row's place by its state: fail, error, stale, warn, then ok and idle together. Sorted
    stably, rows in one state keep the config's order and do not swap at every refresh."""
    return LIST_ORDER.get(state, len(LIST_ORDER))


def is_problem(state: str) -> bool:
    return state in LIST_ORDER


def format_age(seconds: float | None) -> str:
    """An age or duration in the one unit system (probes.units): `1.4 s`, `64 s`, `2m05s`."""
    return duration(seconds)


def format_bytes(count: float | None) -> str:
    """A size in binary units (probes.units): `33.6 MiB`."""
    return size(count)


def _derived(result: ProbeResult) -> Iterator[tuple[str, str, float]]:
    """Per-item series hidden in a result's data: (item, field, value)."""
    data = result.data
    if result.probe == "replication" and data.get("role") == "primary":
        for replica in data.get("replicas") or ():
            name = str(replica.get("application_name") or replica.get("client_addr") or "?")
            if replica.get("lag_bytes") is not None:
                yield name, "lag_bytes", float(replica["lag_bytes"])
            if replica.get("replay_lag_s") is not None:
                yield name, "replay_lag_s", float(replica["replay_lag_s"])
    elif result.probe == "queues":
        for queue in data.get("queues") or ():
            if queue.get("depth") is not None:
                yield str(queue.get("name")), "depth", float(queue["depth"])


class ResultStore:
    """Every reading the cockpit has seen, with memory bounded by `history` points per series.

    History entries are (timestamp, value) pairs so rates and charts use real time, not
    sample counts. `clock` is injectable so ages are deterministic in tests.
    """

    def __init__(
        self,
        *,
        history: int = HISTORY,
        clock: Callable[[], float] = time.time,
        order: Iterable[str] = (),
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.history_size = history
        # Targets listed in this order (the config's: primary before replica), whatever
        # order their readings arrive in; others after them, in arrival order.
        self._rank = {name: i for i, name in enumerate(order)}
        self.groups = {name: group for name, group in (groups or {}).items() if group}  # target -> `group` key
        self.clock = clock
        self.latest: dict[Key, ProbeResult] = {}
        self.last_good: dict[Key, ProbeResult] = {}
        self._series: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._quantiles: dict[SeriesKey, tuple[tuple[int, float], list[float]]] = {}
        self.last_update: float | None = None

    def add(self, results: Iterable[ProbeResult]) -> set[str]:
        """Record readings; return the probe names that changed (panes redraw only those)."""
        changed: set[str] = set()
        for result in results:
            self.latest[result.key] = result
            changed.add(result.probe)
            if self.last_update is None or result.timestamp > self.last_update:
                self.last_update = result.timestamp
            if result.status is Status.ERROR:
                continue
            self.last_good[result.key] = result
            if result.value is not None:
                self._append(result.key, result.timestamp, float(result.value))
            for item, field, value in _derived(result):
                self._append((*result.key, item, field), result.timestamp, value)
        return changed

    def _append(self, key: SeriesKey, timestamp: float, value: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = deque(maxlen=self.history_size)
        series.append((timestamp, value))

    # --- reading -------------------------------------------------------------------------

    def order_of(self, target: str) -> int:
        """A target's place in the config's order (targets not in it come after)."""
        return self._rank.get(target, len(self._rank))

    def group_of(self, target: str) -> str:
        """The target's `group` from the config ("" when it has none)."""
        return self.groups.get(target, "")

    def results(self, probe: str) -> list[ProbeResult]:
        """Latest results of one probe across targets, in arrival order of targets."""
        return [r for key, r in self.latest.items() if key[2] == probe]

    def reading(self, key: Key) -> Reading | None:
        latest = self.latest.get(key)
        if latest is None:
            return None
        good = self.last_good.get(key)
        if latest.status is Status.ERROR and good is not None:
            return Reading(good, latest, True, self.clock() - good.timestamp)
        return Reading(latest, latest, False, self.clock() - latest.timestamp)

    def readings(self, probe: str) -> list[Reading]:
        keys = sorted((key for key in self.latest if key[2] == probe), key=lambda k: self._rank.get(k[1], len(self._rank)))
        found = (self.reading(key) for key in keys)
        return [r for r in found if r is not None]

    def points(self, key: SeriesKey) -> list[tuple[float, float]]:
        return list(self._series.get(key, ()))

    def values(self, key: SeriesKey, last: int | None = None) -> list[float]:
        """The series' values, oldest first; only the `last` few when given (a sparkline)."""
        series = self._series.get(key, ())
        if last is not None and last < len(series):
            return [v for _, v in itertools.islice(reversed(series), last)][::-1]
        return [v for _, v in series]

    def percentile(self, key: SeriesKey, pct: int) -> float | None:
        series = self._series.get(key)
        if not series:
            return None
        if len(series) == 1:
            return series[0][1]
        # Two panes ask for the same percentiles at every refresh: sort the window once.
        stamp = (len(series), series[-1][0])
        cached = self._quantiles.get(key)
        if cached is None or cached[0] != stamp:
            cached = self._quantiles[key] = (stamp, sorted(v for _, v in series))
        # statistics.quantiles(n=100, method="inclusive")[pct - 1], for the one cut point asked.
        ordered = cached[1]
        j, delta = divmod(pct * (len(ordered) - 1), 100)
        if j + 1 >= len(ordered):
            return ordered[-1]
        return (ordered[j] * (100 - delta) + ordered[j + 1] * delta) / 100

    def rate(self, key: SeriesKey, window_s: float = 30.0) -> float | None:
        """Change per second over the last `window_s` seconds (None with too little history)."""
        points = self._series.get(key)
        if not points or len(points) < 2:
            return None
        end_t, end_v = points[-1]
        # From the newest back: the window is a few dozen points of up to `history`.
        start_t, start_v = points[0]
        for t, v in reversed(points):
            if t < end_t - window_s:
                break
            start_t, start_v = t, v
        if end_t - start_t <= 0:
            return None
        return (end_v - start_v) / (end_t - start_t)
