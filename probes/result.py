"""The probe result type and the one wrapper that turns every failure into a result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from probes.lag import PatientTimeout

DEFAULT_TIMEOUT_S = 2.0


class Status(StrEnum):
    """How a reading looks to the operator, from best to worst."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2, Status.ERROR: 3}


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of some statuses (ok when there are none)."""
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def grade(value: float | None, warn: float | None, fail: float | None) -> Status:
    """Compare a reading with warn/fail thresholds where higher is worse."""
    if value is None:
        return Status.OK
    if fail is not None and value >= fail:
        return Status.FAIL
    if warn is not None and value >= warn:
        return Status.WARN
    return Status.OK


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One reading of one probe against one target.

    `data` holds JSON-serialisable facts (pids, byte counts, lists of rows) that panes,
    runbook conditions and `warroom check --json` read; `summary` is the one line an
    operator sees.
    """

    target: str
    kind: str  # postgres / redis / http / docker
    probe: str
    status: Status
    summary: str
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    timestamp: float = field(default_factory=time.time)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.target, self.probe)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "probe": self.probe,
            "status": str(self.status),
            "summary": self.summary,
            "value": self.value,
            "data": self.data,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "timestamp": self.timestamp,
        }

    def with_elapsed(self, elapsed_ms: float) -> ProbeResult:
        return replace(self, elapsed_ms=elapsed_ms)


def error_result(
    target: str, kind: str, probe: str, summary: str, *, elapsed_ms: float = 0.0, **data: Any
) -> ProbeResult:
    return ProbeResult(
        target=target,
        kind=kind,
        probe=probe,
        status=Status.ERROR,
        summary=summary,
        data=dict(data),
        elapsed_ms=elapsed_ms,
    )


async def guarded(
    target: str,
    kind: str,
    probes: Sequence[str],
    work: Awaitable[list[ProbeResult]],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    describe_error: Any = None,
) -> list[ProbeResult]:
    """Run one collection of probes with a timeout; never raise.

    On timeout or any exception every probe in `probes` gets an `error` result whose
    summary is short and names the target. `describe_error(exc) -> str` lets a backend
    turn its own exceptions into an operator message ("connection refused at ...").
    Results that come back get `elapsed_ms` filled in when the backend left it at 0.

    The timeout starts here, when the probe really starts, and waits longer by the time the
    event loop itself stalled meanwhile (`probes.lag`); `elapsed_ms` leaves that time out:
    a busy warroom is not a slow target.
    """
    scope = PatientTimeout(timeout)
    try:
        async with scope:
            results = await work
    except TimeoutError:
        ms = _own_ms(scope)
        msg = f"{target}: timed out after {timeout:g}s{lag_words(scope.lag_s)} (hung or unreachable?)"
        return [error_result(target, kind, p, msg, elapsed_ms=ms, timeout=True) for p in probes]
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a probe must never raise to its caller
        ms = _own_ms(scope)
        msg = describe_error(exc) if describe_error else None
        if not msg:
            msg = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
        from probes.secrets import redact

        msg = redact(f"{target}: {msg}")
        return [error_result(target, kind, p, msg, elapsed_ms=ms) for p in probes]
    ms = _own_ms(scope)
    return [r if r.elapsed_ms else r.with_elapsed(ms) for r in results]


def _own_ms(scope: Any) -> float:
    """Milliseconds since the probe started, without the event loop's own stalls."""
    return max(0.0, time.perf_counter() - scope.started - scope.stalled()) * 1000


def lag_words(lag_s: float) -> str:
    """`, plus 1.2 s while warroom was busy` when a timeout waited longer for its own event loop."""
    return f", plus {lag_s:.1f} s while warroom was busy" if lag_s >= 0.05 else ""
