"""The event loop's own lag, measured apart from the targets': a busy warroom is not a slow target.

While a probe is in flight, a timer runs every PERIOD_S and notes how late the loop runs it:
a loop that was busy elsewhere (hundreds of readings to parse, a synchronous call) runs it
late, and that stretch of time is a *stall*. A probe subtracts the stalls that overlap its
request from the latency it reports, and its timeout waits that much longer (`PatientTimeout`).
The timer only runs while some probe is in flight, so an idle cockpit pays nothing for it.

A stall is subtracted whole: when an answer came in during one, nobody knows when, and the
target gets the benefit of the doubt (its latency is at least what is left). The next round,
on a loop that is not stalled, measures it again; the header says warroom is behind meanwhile.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from types import TracebackType

PERIOD_S = 0.02  # the precision of a stall: it starts at most this long before it is seen
MIN_LATE_S = 0.002  # a timer this late is the loop's ordinary jitter, not a stall
STALLS_KEPT = 512
EXTRA_TIMEOUTS = 3  # a timeout waits for the loop's stalls up to 3 timeouts more (4 in all)


class LoopLag:
    """Stalls of one event loop, as (start, end) on `time.perf_counter()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._open = 0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._stalls: deque[tuple[float, float]] = deque(maxlen=STALLS_KEPT)

    def open(self) -> None:
        """A probe starts: watch the loop until every open probe has closed."""
        self._open += 1
        if self._handle is None:
            self._arm()

    def close(self) -> None:
        self._open = max(0, self._open - 1)
        if not self._open and self._handle is not None:
            self._tick(rearm=False)  # a stall under way up to now is kept
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        self._due = self._loop.time() + PERIOD_S
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self, rearm: bool = True) -> None:
        late = self._loop.time() - self._due
        if late > MIN_LATE_S:
            end = time.perf_counter()
            self._stalls.append((end - late, end))
            self._due += late  # counted once, whoever asks next
        if rearm:
            self._arm()

    def stalled(self, start: float, end: float | None = None) -> float:
        """Seconds the loop stalled between `start` and `end` (perf_counter; `end` now)."""
        now = time.perf_counter()
        end = now if end is None else end
        total = 0.0
        for s, e in reversed(self._stalls):
            if e <= start:
                break
            total += max(0.0, min(e, end) - max(s, start))
        if self._handle is not None:
            # The timer is due and has not run yet: the loop is stalling right now.
            late = self._loop.time() - self._due
            if late > MIN_LATE_S:
                total += max(0.0, min(now, end) - max(now - late, start))
        return total


_MONITORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def monitor(loop: asyncio.AbstractEventLoop | None = None) -> LoopLag:
    """The lag monitor of `loop` (the running one by default), created on first use."""
    loop = loop or asyncio.get_running_loop()
    found = _MONITORS.get(loop)
    if found is None:
        found = _MONITORS[loop] = LoopLag(loop)
    return found


class PatientTimeout:
    """`asyncio.timeout(seconds)` whose deadline moves later by the time the loop itself
    stalled meanwhile: a probe gets its whole timeout of the loop's attention, and a target is
    never called hung because warroom was busy. The deadline moves by EXTRA_TIMEOUTS timeouts
    at most, so a hung target on a loop that never catches up is still called hung.

    `started` is when the probe started (perf_counter); `lag_s` how much later the deadline
    moved. It also keeps the lag monitor running while the probe is in flight."""

    def __init__(self, seconds: float, *, max_extra_s: float | None = None) -> None:
        self.seconds = seconds
        self.max_extra_s = EXTRA_TIMEOUTS * seconds if max_extra_s is None else max_extra_s
        self.started = 0.0
        self.lag_s = 0.0
        self._scope: asyncio.Timeout | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._lag: LoopLag | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> PatientTimeout:
        self._loop = asyncio.get_running_loop()
        self._lag = monitor(self._loop)
        self._lag.open()
        self.started = time.perf_counter()
        self._scope = asyncio.timeout(None)
        await self._scope.__aenter__()
        self._handle = self._loop.call_later(self.seconds, self._check)
        return self

    def _check(self) -> None:
        assert self._lag is not None and self._loop is not None and self._scope is not None
        now = time.perf_counter()
        self.lag_s = min(self.max_extra_s, self._lag.stalled(self.started, now))
        remaining = self.started + self.seconds + self.lag_s - now
        if remaining > 0.001:
            self._handle = self._loop.call_later(remaining, self._check)
        else:
            self._handle = None
            self._scope.reschedule(self._loop.time())  # expire now

    def stalled(self, start: float | None = None, end: float | None = None) -> float:
        """Seconds the loop stalled since this timeout started (or between `start` and `end`)."""
        assert self._lag is not None
        return self._lag.stalled(self.started if start is None else start, end)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._scope is not None and self._lag is not None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._lag.close()
        return await self._scope.__aexit__(kind, exc, tb)
