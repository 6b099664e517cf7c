"""The cockpit's model of probe readings: latest, last good, and bounded history per series."""

from __future__ import annotations

import bisect
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
        """`timeout 12 s` / `refused 12 s`: why and since when the data on screen is old.
        Never a bare `stale` for a target that refuses: beside its last values ("200 11 ms")
        that read as a healthy service with old data."""
        return f"{self.why} {format_age(self.age_s)}"

    @property
    def why(self) -> str:
        """The latest reading's failure in a word or two (`refused`, `DNS failed`, ...)."""
        if self.latest.data.get("timeout"):
            return "timeout"
        text = f"{self.latest.data.get('error') or ''} {self.latest.summary}".lower()
        return next((word for keys, word in _WHY if any(k in text for k in keys)), "error")


# Words for why a target gave no reading, first match wins (probe error messages, lower-cased).
_WHY: tuple[tuple[tuple[str, ...], str], ...] = (
    (("refused",), "refused"),
    (("timed out", "timeout"), "timeout"),
    (("dns", "name resolution", "nodename", "getaddrinfo"), "DNS failed"),
    (("certificate",), "certificate failed"),
    (("tls", "ssl"), "TLS failed"),
    (("password", "authentication", "noauth", "wrongpass", "permission denied", "401", "403"), "auth failed"),
    (("closed the connection", "connection reset", "reset by peer", "broken pipe"), "connection closed"),
    (("unreachable", "no route"), "unreachable"),
)


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
        # A series' values kept sorted, once a percentile of it was asked: updated at each
        # reading (one insert, one removal) instead of sorting the window again.
        self._sorted: dict[SeriesKey, list[float]] = {}
        # Each probe's keys in display order, sorted again only when a new target appears:
        # panes ask for them at every redraw, and re-sorting the fleet each time was O(n log n).
        self._keys: dict[str, list[Key]] = {}
        self._tails: dict[SeriesKey, tuple[tuple[int, int], tuple[float, ...]]] = {}
        self._appended: dict[SeriesKey, int] = {}  # points ever appended: a tail's version
        self._unsorted: set[str] = set()
        self.last_update: float | None = None

    def add(self, results: Iterable[ProbeResult]) -> set[str]:
        """Record readings; return the probe names that changed (panes redraw only those)."""
        changed: set[str] = set()
        for result in results:
            if result.key not in self.latest:
                self._keys.setdefault(result.probe, []).append(result.key)
                self._unsorted.add(result.probe)
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
        ordered = self._sorted.get(key)
        if ordered is not None:
            if len(series) == series.maxlen:
                del ordered[bisect.bisect_left(ordered, series[0][1])]
            bisect.insort(ordered, value)
        series.append((timestamp, value))
        self._appended[key] = self._appended.get(key, 0) + 1

    # --- reading -------------------------------------------------------------------------

    def order_of(self, target: str) -> int:
        """A target's place in the config's order (targets not in it come after)."""
        return self._rank.get(target, len(self._rank))

    def group_of(self, target: str) -> str:
        """The target's `group` from the config ("" when it has none)."""
        return self.groups.get(target, "")

    def results(self, probe: str) -> list[ProbeResult]:
        """Latest results of one probe across targets, in display order."""
        return [self.latest[key] for key in self.keys(probe)]

    def keys(self, probe: str) -> list[Key]:
        """The probe's keys in the config's target order (others after, by arrival)."""
        keys = self._keys.get(probe, [])
        if probe in self._unsorted:
            self._unsorted.discard(probe)
            keys.sort(key=lambda k: self._rank.get(k[1], len(self._rank)))  # stable: arrival order after
        return keys

    def reading(self, key: Key) -> Reading | None:
        latest = self.latest.get(key)
        if latest is None:
            return None
        good = self.last_good.get(key)
        if latest.status is Status.ERROR and good is not None:
            return Reading(good, latest, True, self.clock() - good.timestamp)
        return Reading(latest, latest, False, self.clock() - latest.timestamp)

    def readings(self, probe: str) -> list[Reading]:
        found = (self.reading(key) for key in self.keys(probe))
        return [r for r in found if r is not None]

    def points(self, key: SeriesKey) -> list[tuple[float, float]]:
        return list(self._series.get(key, ()))

    def values(self, key: SeriesKey, last: int | None = None) -> list[float]:
        """The series' values, oldest first; only the `last` few when given (a sparkline)."""
        series = self._series.get(key, ())
        if last is not None and last < len(series):
            return [v for _, v in itertools.islice(reversed(series), last)][::-1]
        return [v for _, v in series]

    def tail(self, key: SeriesKey, last: int) -> tuple[float, ...]:
        """The last `last` values, oldest first, as one tuple kept until the series changes:
        a group's sparkline reads a thousand members' tails at every redraw, most unchanged."""
        series = self._series.get(key)
        if not series:
            return ()
        stamp = (self._appended.get(key, 0), last)
        cached = self._tails.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        values = tuple(v for _, v in itertools.islice(reversed(series), last))[::-1]
        self._tails[key] = (stamp, values)
        return values

    def percentile(self, key: SeriesKey, pct: int) -> float | None:
        series = self._series.get(key)
        if not series:
            return None
        if len(series) == 1:
            return series[0][1]
        ordered = self._sorted.get(key)
        if ordered is None:  # sorted once; `_append` keeps it sorted from then on
            ordered = self._sorted[key] = sorted(v for _, v in series)
        # statistics.quantiles(n=100, method="inclusive")[pct - 1], for the one cut point asked.
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
