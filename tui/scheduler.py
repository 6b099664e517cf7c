"""Probe sources for the cockpit: live probes on a schedule in workers, or fixed readings."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from textual.app import App

from probes.config import Environment
from probes.registry import BACKENDS, targets
from probes.result import ProbeResult, error_result
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
# An import holds the interpreter lock for ~100 ms at a stretch; the next backend's import
# waits this long at most for the backends already imported to show their first readings.
SETTLE_S = 0.3


class ProbeSource(Protocol):
    """Produces ProbeResults for an app: `start` once mounted, `stop` before exit."""

    refresh_s: float

    def start(self, app: App[Any]) -> None: ...

    async def stop(self) -> None: ...


def effective_timeout(env: Environment, refresh_s: float) -> float:
    """A probe's timeout stays below its interval so a hung target never delays the next round."""
    return min(env.timeout_s, max(0.5, refresh_s * 0.9))


class LiveSource:
    """Runs every target's probes in a worker of its own, one round per tick.

    One worker per (kind, target): a hung PostgreSQL never delays Redis, a target's first
    reading is posted as soon as it arrives, and a round never starts before the previous
    one of the same target ended (no pile-up: a late round waits for the next tick). Later
    readings are posted in one batch per tick. Backends are imported one after the other in
    a thread of their own, so psycopg/redis/docker never delay the first frame and the
    lightest (httpx) does not wait for the heaviest before its first reading shows.
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
        self._batch_due = False
        self.rounds: dict[str, int] = {}  # origin -> completed rounds (the perf script reads it)

    def start(self, app: App[Any]) -> None:
        self._app = app
        self._epoch = self._clock()
        for kind, target in targets(self.env):
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
        while not self._stopped and self._app is not None:
            await self._round(kind, target, origin)
            # The next tick of one schedule shared by all targets keeps their rounds aligned;
            # a round that overran its interval waits for the tick after (no pile-up).
            await asyncio.sleep(self.refresh_s - (self._clock() - self._epoch) % self.refresh_s)

    async def _round(self, kind: str, target: Any, origin: str) -> None:
        try:
            # Importing the backend is not the target's time: it stays outside the timeout.
            module = None if self._collector is not None else await self._backend(kind)
            # A timeout scope, not wait_for: no extra task per round.
            async with asyncio.timeout(self.timeout_s + GRACE_S):
                results = await self._collect(kind, target, module)
        except TimeoutError:
            message = f"{target.name}: timed out after {self.timeout_s:g}s (hung or unreachable?)"
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
        if first:
            # A target's first reading shows as soon as it returns, whatever the others do.
            self._app.post_message(ProbesUpdated(tuple(results), origin=origin))
            return
        self._pending[origin] = results
        if not self._batch_due:
            self._batch_due = True
            asyncio.get_running_loop().call_later(BATCH_S, self._post_batch)

    def _post_batch(self) -> None:
        self._batch_due = False
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
