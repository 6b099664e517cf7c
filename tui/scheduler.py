"""Probe sources for the cockpit: live probes on a schedule in workers, or fixed readings."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
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


class ProbeSource(Protocol):
    """Produces ProbeResults for an app: `start` once mounted, `stop` before exit."""

    refresh_s: float

    def start(self, app: App[Any]) -> None: ...

    async def stop(self) -> None: ...


def effective_timeout(env: Environment, refresh_s: float) -> float:
    """A probe's timeout stays below its interval so a hung target never delays the next round."""
    return min(env.timeout_s, max(0.5, refresh_s * 0.9))


class LiveSource:
    """Runs every target's probes in its own worker, re-armed with a timer when it finishes.

    One worker per (kind, target): a hung PostgreSQL never delays Redis, a target's first
    reading is posted as soon as it arrives, and a round never starts before the previous
    one of the same target ended (no pile-up). Backends are imported in a thread inside the
    worker so psycopg/redis/docker never delay the first frame.
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
        self.rounds: dict[str, int] = {}  # origin -> completed rounds (the perf script reads it)

    def start(self, app: App[Any]) -> None:
        self._app = app
        for kind, target in targets(self.env):
            self._arm(kind, target)

    def _arm(self, kind: str, target: Any) -> None:
        if self._stopped or self._app is None:
            return
        origin = f"{kind}:{target.name}"
        self._app.run_worker(
            self._round(kind, target, origin),
            name=origin,
            group=f"probe:{origin}",
            exclusive=True,
            exit_on_error=False,
        )

    async def _round(self, kind: str, target: Any, origin: str) -> None:
        started = self._clock()
        try:
            results = await asyncio.wait_for(self._collect(kind, target), self.timeout_s + GRACE_S)
        except TimeoutError:
            message = f"{target.name}: timed out after {self.timeout_s:g}s (hung or unreachable?)"
            results = self._failed(kind, target, origin, message, timeout=True)
        except Exception as exc:  # noqa: BLE001 - the schedule must survive a broken backend
            message = f"{target.name}: {type(exc).__name__}: {exc}".splitlines()[0][:200]
            results = self._failed(kind, target, origin, redact(message))
        if self._stopped or self._app is None:
            return
        self._probes[origin] = tuple(dict.fromkeys(r.probe for r in results))
        self.rounds[origin] = self.rounds.get(origin, 0) + 1
        self._app.post_message(ProbesUpdated(tuple(results), origin=origin))
        delay = max(0.05, self.refresh_s - (self._clock() - started))
        self._app.set_timer(delay, lambda: self._arm(kind, target), name=f"arm:{origin}")

    def _failed(self, kind: str, target: Any, origin: str, message: str, **data: Any) -> list[ProbeResult]:
        """One error per probe the target produced before, so each of its panes turns stale."""
        module = sys.modules.get(BACKENDS[kind])
        probes = self._probes.get(origin) or getattr(module, "PROBES", None) or (kind,)
        return [error_result(target.name, kind, probe, message, **data) for probe in probes]

    async def _collect(self, kind: str, target: Any) -> list[ProbeResult]:
        if self._collector is not None:
            return await self._collector(kind, target, None)
        # Importing psycopg or docker takes tens of milliseconds: keep it off the event loop.
        module = await asyncio.to_thread(importlib.import_module, BACKENDS[kind])
        session = self._sessions.get(target.name)
        if session is None and hasattr(module, "Session"):
            session = self._sessions[target.name] = module.Session(target)
        return await module.collect(
            target, self.env.thresholds, timeout=self.timeout_s, session=session
        )

    async def stop(self) -> None:
        self._stopped = True
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
