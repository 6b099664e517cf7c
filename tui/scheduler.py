"""Probe sources for the cockpit: live probes on a schedule in workers, or fixed readings."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from textual.app import App

from probes.config import Environment
from probes.lag import PatientTimeout, monitor
from probes.registry import BACKENDS, targets
from probes.result import ProbeResult, error_result, lag_words
from probes.secrets import redact
from tui.messages import ProbesUpdated

Collector = Callable[[str, Any, Any], Awaitable[list[ProbeResult]]]
# Extra time a backend gets beyond its own timeout before the scheduler gives up on it:
# backends enforce their timeout themselves; this only catches one that does not.
GRACE_S = 0.5
SESSION_CLOSE_S = 1.0
# Every target's round starts on the same tick, so their readings arrive within a few
# milliseconds of each other; holding them this long lets the screen redraw once per refresh
# instead of once per target (less CPU, fewer bytes to the terminal).
BATCH_S = 0.1
# A large fleet's readings arrive over the whole first half of the interval (its starts are
# spread): batches are posted at least this far apart, so the panes, the header and the
# triggers are redrawn and evaluated a few times per second, not once per reading. At 300
# targets a redraw per 0.1 s batch was 14 redraws a second and most of the cockpit's CPU.
# A longer refresh allows a longer gap (a fifth of it, at most POST_GAP_MAX_S): 1000 targets at
# refresh 5 s are then redrawn about three times per round instead of eight.
POST_GAP_S = 0.3
POST_GAP_MAX_S = 1.0
# At most this many targets start together; a larger fleet's starts are spread over the first
# SPREAD_SHARE of the interval, so 300 requests never leave at once (a small one, all of them
# on the tick: its readings still arrive in one batch).
SPREAD_BURST = 20
SPREAD_SHARE = 0.5
# Warroom is behind when a round outlasts the refresh and its own event loop's lag accounts
# for at least this share of the overrun; the round then stretches (up to MAX_STRETCH times
# the refresh) until CATCH_UP_ROUNDS rounds in a row fit in the refresh again.
BEHIND_SHARE = 0.5
MAX_STRETCH = 4.0
CATCH_UP_ROUNDS = 2
# An import holds the interpreter lock for ~100 ms at a stretch; the next backend's import
# waits this long at most for the backends already imported to show their first readings.
SETTLE_S = 0.3


class ProbeSource(Protocol):
    """Produces ProbeResults for an app: `start` once mounted, `stop` before exit."""

    refresh_s: float

    def start(self, app: App[Any]) -> None: ...

    async def stop(self) -> None: ...


def effective_timeout(env: Environment, refresh_s: float) -> float:
    """The configured timeout is the timeout, whatever the refresh: a target whose round
    outlasts the interval skips ticks (the source says so) instead of being cut short, so a
    service answering in 1.3 s at refresh 1 s reads slow 1.3 s, not timed out."""
    return env.timeout_s


@dataclass
class _Round:
    """The targets that started on one tick: how many, how many are done, the last done when."""

    expected: int = 0
    finished: int = 0
    last: float = 0.0
    late: float = 0.0  # the latest a target woke after its start time: the loop's lag


class LiveSource:
    """Runs every target's probes in a worker of its own, one round per tick.

    One worker per (kind, target): a hung PostgreSQL never delays Redis, a target's first
    reading is posted within BATCH_S of its arrival, and a round never starts before the
    previous one of the same target ended (no pile-up: a late round waits for the next tick).
    Later readings are posted in batches at least POST_GAP_S apart. Backends are imported one after the other in
    a thread of their own, so psycopg/redis/docker never delay the first frame and the
    lightest (httpx) does not wait for the heaviest before its first reading shows.

    What the screen reads: `skipping` (target -> seconds between its readings, for a target
    whose round outlasts the interval) and `behind` (a line saying warroom's own event loop
    cannot keep up, while the round stretches to `period_s`).
    """

    def __init__(
        self,
        env: Environment,
        *,
        refresh_s: float,
        collector: Collector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env = env
        self.refresh_s = refresh_s
        self.timeout_s = effective_timeout(env, refresh_s)
        self.period_s = refresh_s  # the interval between ticks: longer while warroom is behind
        self.behind = ""
        self.skipping: dict[str, float] = {}
        self._base = 0.0  # ticks are at _base + k * period_s
        self._slots: dict[str, float] = {}  # origin -> share of the interval its start waits
        self._ticks: dict[float, _Round] = {}
        self._on_time = 0
        self._collector = collector
        self._clock = clock
        self._sessions: dict[str, Any] = {}
        self._probes: dict[str, tuple[str, ...]] = {}
        self._app: App[Any] | None = None
        self._stopped = False
        self._epoch = 0.0
        self._importer: ThreadPoolExecutor | None = None
        self._modules: dict[str, Any] = {}  # kind -> backend module, once fully imported
        self._import_lock = asyncio.Lock()
        self._first_readings: dict[str, asyncio.Event] = {}  # kind -> set at its first reading
        self._pending: dict[str, list[ProbeResult]] = {}
        self._batch: asyncio.TimerHandle | None = None  # the next batch's post, once due
        self._posted = -math.inf  # when the last batch was posted (the loop's clock)
        self._post_gap = max(POST_GAP_S, min(POST_GAP_MAX_S, refresh_s / 5))
        self.rounds: dict[str, int] = {}  # origin -> completed rounds (the perf script reads it)

    def start(self, app: App[Any]) -> None:
        self._app = app
        self._epoch = self._base = self._clock()
        every = list(targets(self.env))
        slots = math.ceil(len(every) / SPREAD_BURST)
        for i, (kind, target) in enumerate(every):
            self._slots[f"{kind}:{target.name}"] = (i // SPREAD_BURST) / slots * SPREAD_SHARE if slots > 1 else 0.0
            self._arm(kind, target)

    def _arm(self, kind: str, target: Any) -> None:
        if self._stopped or self._app is None:
            return
        origin = f"{kind}:{target.name}"
        self._app.run_worker(
            self._run(kind, target, origin),
            name=origin,
            group=f"probe:{origin}",
            exclusive=True,
            exit_on_error=False,
        )

    async def _run(self, kind: str, target: Any, origin: str) -> None:
        """A round, then a sleep until the next tick, until stopped. One long-lived worker per
        target: a worker and a timer per round cost more CPU than the round itself."""
        tick = self._epoch
        self._expect(tick)
        while not self._stopped and self._app is not None:
            start = tick + self._slots.get(origin, 0.0) * self.period_s
            delay = start - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            late = max(0.0, self._clock() - start)
            await self._round(kind, target, origin)
            self._finish(tick, late)
            # The next tick of one schedule shared by all targets keeps their rounds aligned;
            # a round that overran its interval waits for the tick after (no pile-up).
            previous, tick = tick, self._next_tick(origin, after=tick)
            if tick - previous > self.period_s * 1.5 and previous != self._epoch:
                self.skipping[target.name] = tick - previous
            else:
                self.skipping.pop(target.name, None)
            self._expect(tick)

    def _next_tick(self, origin: str, *, after: float) -> float:
        """The first tick past `after` whose start time for `origin` is still to come."""
        now = self._clock() - self._slots.get(origin, 0.0) * self.period_s
        k = max(0, math.floor((now - self._base) / self.period_s) + 1)
        # Always base + k * period, so targets on the same tick compute the very same float.
        while self._base + k * self.period_s <= after:
            k += 1
        return self._base + k * self.period_s

    def _expect(self, tick: float) -> None:
        self._ticks.setdefault(tick, _Round()).expected += 1

    def _finish(self, tick: float, late: float) -> None:
        round_ = self._ticks.get(tick)
        if round_ is None:
            return
        round_.finished += 1
        round_.last = self._clock()
        round_.late = max(round_.late, late)
        if round_.finished >= round_.expected:
            del self._ticks[tick]
            if tick != self._epoch:  # the first round imports the backends: not a measure
                self._judge(tick, round_)

    def _judge(self, tick: float, round_: _Round) -> None:
        """Whether warroom's own event loop kept up with this round; stretch the round if not."""
        took = round_.last - tick
        if took <= self.refresh_s:
            self._on_time += 1
            if self.behind and self._on_time >= CATCH_UP_ROUNDS:
                self.behind = ""
                self._base, self.period_s = tick, self.refresh_s
            return
        # The loop's own lag during the round: stalls seen while probes were in flight, and how
        # late a target woke for its start (a stall between rounds, no probe in flight).
        own = max(monitor().stalled(time.perf_counter() - took), round_.late)
        if own < BEHIND_SHARE * (took - self.refresh_s):
            return  # a slow target, not a busy warroom: that target skips ticks on its own
        self._on_time = 0
        # The whole fleet, not the targets of this tick: while warroom is behind, targets whose
        # round overran start on later ticks, and a tick holds only part of the fleet.
        count = max(round_.expected, len(self._slots))
        self.behind = (
            f"behind: a round of {count} target{'s' if count != 1 else ''} takes {took:.1f} s"
            f" at refresh {self.refresh_s:g} s"
        )
        # A fifth more than the round took, in tenths of a second: room for the loop to catch up.
        self._base = tick
        self.period_s = min(MAX_STRETCH * self.refresh_s, max(self.refresh_s, math.ceil(took * 12) / 10))

    async def _round(self, kind: str, target: Any, origin: str) -> None:
        # A timeout scope, not wait_for: no extra task per round. It starts when the round
        # really starts, and waits for the time warroom's own event loop stalled meanwhile.
        scope = PatientTimeout(self.timeout_s + GRACE_S)
        try:
            # Importing the backend is not the target's time: it stays outside the timeout.
            module = None if self._collector is not None else await self._backend(kind)
            async with scope:
                results = await self._collect(kind, target, module)
        except TimeoutError:
            lag = lag_words(scope.lag_s)
            message = f"{target.name}: timed out after {self.timeout_s:g}s{lag} (hung or unreachable?)"
            results = self._failed(kind, target, origin, message, timeout=True)
        except Exception as exc:  # noqa: BLE001 - the schedule must survive a broken backend
            message = f"{target.name}: {type(exc).__name__}: {exc}".splitlines()[0][:200]
            results = self._failed(kind, target, origin, redact(message))
        if self._stopped or self._app is None:
            return
        self._probes[origin] = tuple(dict.fromkeys(r.probe for r in results))
        first = origin not in self.rounds
        if kind in self._first_readings:
            self._first_readings[kind].set()
        self.rounds[origin] = self.rounds.get(origin, 0) + 1
        self._deliver(origin, results, first=first)

    def _deliver(self, origin: str, results: list[ProbeResult], *, first: bool) -> None:
        assert self._app is not None
        self._pending[origin] = results
        loop = asyncio.get_running_loop()
        # BATCH_S after the first reading of the batch, and POST_GAP_S after the last batch;
        # a target's first reading within BATCH_S, whatever the others do (posting each one
        # alone redrew every pane once per target: 1000 redraws while a large fleet started).
        due = loop.time() + BATCH_S
        if not first:
            due = max(due, self._posted + self._post_gap)
        if self._batch is None or due < self._batch.when():
            if self._batch is not None:
                self._batch.cancel()
            self._batch = loop.call_at(due, self._post_batch)

    def _post_batch(self) -> None:
        self._batch = None
        self._posted = asyncio.get_running_loop().time()
        pending, self._pending = self._pending, {}
        if pending and not self._stopped and self._app is not None:
            self._app.post_message(ProbesUpdated(tuple(r for results in pending.values() for r in results)))

    def _failed(self, kind: str, target: Any, origin: str, message: str, **data: Any) -> list[ProbeResult]:
        """One error per probe the target produced before, so each of its panes turns stale."""
        module = sys.modules.get(BACKENDS[kind])
        probes = self._probes.get(origin) or getattr(module, "PROBES", None) or (kind,)
        return [error_result(target.name, kind, probe, message, **data) for probe in probes]

    async def _backend(self, kind: str) -> Any:
        module = self._modules.get(kind)
        if module is not None:
            return module
        async with self._import_lock:  # one import at a time, in the order targets were armed
            module = self._modules.get(kind)
            if module is None:
                # While a thread imports, the event loop gets the interpreter only in slices:
                # let the backends imported so far show their first readings before that.
                waits = [event.wait() for event in self._first_readings.values() if not event.is_set()]
                if waits:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.gather(*waits), SETTLE_S)
                # Importing psycopg, redis or httpx takes ~100 ms each: off the event loop.
                if self._importer is None:
                    self._importer = ThreadPoolExecutor(1, thread_name_prefix="warroom-import")
                loop = asyncio.get_running_loop()
                module = await loop.run_in_executor(self._importer, importlib.import_module, BACKENDS[kind])
                self._modules[kind] = module
                self._first_readings[kind] = asyncio.Event()
        return module

    async def _collect(self, kind: str, target: Any, module: Any) -> list[ProbeResult]:
        if self._collector is not None:
            return await self._collector(kind, target, None)
        session = self._sessions.get(target.name)
        if session is None and hasattr(module, "Session"):
            session = self._sessions[target.name] = module.Session(target)
        return await module.collect(
            target, self.env.thresholds, timeout=self.timeout_s, session=session
        )

    def session(self, kind: str, target: Any) -> Any:
        """The long-lived probe session of a target, for runbook reads to share (one
        connection per target: runbooks.sessions); created here when no round made it yet.
        None for a backend without sessions, a fed collector, or once stopped."""
        if self._stopped or self._collector is not None:
            return None
        session = self._sessions.get(target.name)
        if session is None:
            module = self._modules.get(kind) or importlib.import_module(BACKENDS[kind])
            if not hasattr(module, "Session"):
                return None
            session = self._sessions[target.name] = module.Session(target)
        return session

    async def stop(self) -> None:
        self._stopped = True
        if self._importer is not None:
            self._importer.shutdown(wait=False, cancel_futures=True)
        if self._app is not None:
            for kind, target in targets(self.env):
                self._app.workers.cancel_group(self._app, f"probe:{kind}:{target.name}")
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            try:
                await asyncio.wait_for(session.aclose(), SESSION_CLOSE_S)
            except Exception:  # noqa: BLE001,S110 - closing on exit is best effort
                pass


class FixedSource:
    """Feeds fixed readings, for snapshots, screenshots and tests: deterministic by design.

    `history` is fed first (oldest first), then `results`; `push` adds more later, as a
    live source would (tests use it to turn a target stale).
    """

    def __init__(
        self,
        results: Iterable[ProbeResult],
        *,
        history: Iterable[ProbeResult] = (),
        refresh_s: float = 1.0,
    ) -> None:
        self.results = tuple(results)
        self.history = tuple(history)
        self.refresh_s = refresh_s
        self._app: App[Any] | None = None

    def start(self, app: App[Any]) -> None:
        self._app = app
        app.post_message(ProbesUpdated((*self.history, *self.results)))

    def push(self, results: Iterable[ProbeResult]) -> None:
        assert self._app is not None, "start() first"
        self._app.post_message(ProbesUpdated(tuple(results)))

    async def stop(self) -> None:
        self._app = None
