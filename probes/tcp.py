"""TCP probe: whether a port accepts connections and how fast (search engines, SMTP, brokers)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from typing import Any

from probes.config import TcpTarget
from probes.lag import PatientTimeout
from probes.result import ProbeResult, Status, error_result, grade, guarded, lag_words
from probes.thresholds import Thresholds
from probes.units import duration_ms

KIND = "tcp"
PROBES = ("tcp",)

# guarded() is only the backstop: our own timeout fires first and says what hung.
_BACKSTOP_S = 0.5
_CLOSE_S = 0.5  # a peer slow to acknowledge our FIN is not the probe's business

# errno -> (data.error, words of the summary, a hint)
_ERRNO_WORDS = {
    errno.ECONNREFUSED: ("refused", "connection refused at", " (is the service running?)"),
    errno.EHOSTUNREACH: ("unreachable", "host unreachable:", " (routing or a firewall?)"),
    errno.ENETUNREACH: ("unreachable", "network unreachable:", " (routing or a firewall?)"),
    errno.ECONNRESET: ("reset", "connection reset by", ""),
    errno.ETIMEDOUT: ("timeout", "connection timed out at", " (filtered, or the host is down?)"),
    errno.EADDRNOTAVAIL: ("unreachable", "cannot assign an address for", ""),
}


def connect_limits(target: TcpTarget, thresholds: Thresholds) -> tuple[float, float]:
    """The target's own lines win over the environment's thresholds.tcp."""
    limits = thresholds.of("tcp")
    warn, fail = target.connect_warn_ms, target.connect_fail_ms
    return (limits["connect_warn_ms"] if warn is None else warn, limits["connect_fail_ms"] if fail is None else fail)


def describe_os_error(exc: OSError, address: str) -> tuple[str, str]:
    """(data.error, the operator's message) for a failed connect to `address`."""
    if isinstance(exc, socket.gaierror):
        return "dns", f"cannot resolve the host of {address}: {exc.strerror or exc}"
    found = _ERRNO_WORDS.get(exc.errno or 0)
    if found is None:
        text = exc.strerror or str(exc) or type(exc).__name__
        return "error", f"cannot connect to {address}: {text}"[:200]
    kind, words, hint = found
    return kind, f"{words} {address}{hint}"


async def _connect(target: TcpTarget, thresholds: Thresholds, timeout: float) -> list[ProbeResult]:
    warn_ms, fail_ms = connect_limits(target, thresholds)
    base: dict[str, Any] = {"host": target.host, "port": target.port, "address": target.address,
                            "connect_ms": None, "error": None, "connect_warn_ms": warn_ms, "connect_fail_ms": fail_ms}
    scope = PatientTimeout(timeout)
    writer: asyncio.StreamWriter | None = None
    try:
        async with scope:
            _, writer = await asyncio.open_connection(target.host, target.port)
        # Connected: the handshake is all this probe measures, less warroom's own stalls.
        connect_ms = round(max(0.0, time.perf_counter() - scope.started - scope.stalled()) * 1000, 2)
        peer = writer.get_extra_info("peername")
    except TimeoutError:
        ms = max(0.0, time.perf_counter() - scope.started - scope.stalled()) * 1000
        message = f"{target.name}: no answer connecting to {target.address} within {timeout:g}s{lag_words(scope.lag_s)} (filtered, or the host is down?)"
        return [error_result(target.name, KIND, "tcp", message, elapsed_ms=ms, **{**base, "error": "timeout"}, timeout=True)]
    except OSError as exc:
        ms = max(0.0, time.perf_counter() - scope.started - scope.stalled()) * 1000
        kind, message = describe_os_error(exc, target.address)
        return [error_result(target.name, KIND, "tcp", f"{target.name}: {message}", elapsed_ms=ms, **{**base, "error": kind})]
    finally:
        if writer is not None:
            writer.close()  # nothing is sent: the service sees a connection open and close
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), _CLOSE_S)
    data = {**base, "connect_ms": connect_ms, "peer": f"{peer[0]}:{peer[1]}" if peer else None}
    status = grade(connect_ms, warn_ms, fail_ms)
    summary = f"{target.name}: {target.address} accepts connections in {duration_ms(connect_ms)}"
    if status is not Status.OK:
        limit = fail_ms if status is Status.FAIL else warn_ms
        summary = f"{target.name}: slow connect to {target.address}: {duration_ms(connect_ms)} ({status} at {duration_ms(limit)})"
    return [ProbeResult(target.name, KIND, "tcp", status, summary, value=connect_ms, data=data, elapsed_ms=connect_ms or 0.01)]


async def tcp(target: TcpTarget, thresholds: Thresholds | None = None, *, timeout: float = 2.0, session: Any = None) -> ProbeResult:
    """One connect to the port, closed at once, graded by how long it took; never raises."""
    results = await guarded(
        target.name, KIND, PROBES, _connect(target, thresholds or Thresholds(), timeout), timeout=timeout + _BACKSTOP_S,
        describe_error=lambda exc: describe_os_error(exc, target.address)[1] if isinstance(exc, OSError) else None,
    )
    return results[0]


async def collect(target: TcpTarget, thresholds: Thresholds, *, timeout: float = 2.0, session: Any = None) -> list[ProbeResult]:
    """Every probe of one port (there is one: "tcp"); never raises."""
    return [await tcp(target, thresholds, timeout=timeout, session=session)]
