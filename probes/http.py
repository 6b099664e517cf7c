"""HTTP endpoint probe: status, latency with a curl-like phase breakdown, JSON field, TLS expiry."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from probes.config import HttpTarget
from probes.http_body import (
    MAX_BODY_BYTES,
    body_note,
    decoded,
    json_check,
)
from probes.http_checks import (
    body_checks,
    conditions,
    expected_codes,
    request_headers,
    shown_headers,
)
from probes.http_pool import _STAGE_WORDS, Session, _Pools, _Timeline
from probes.lag import EXTRA_TIMEOUTS, PatientTimeout
from probes.result import ProbeResult, Status, error_result, grade, guarded, lag_words, worst
from probes.secrets import mask_url
from probes.thresholds import Thresholds
from probes.tls import cert_days_left, cert_issue, days_words, unverified_cert
from probes.units import duration_ms

KIND = "http"
PROBES = ("http",)

# guarded() is only the backstop: our own timeout fires first and names the phase that hung.
_BACKSTOP_S = 0.5
# Headers the lean client writes itself (request() adds Host and Content-Length).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})


__all__ = ["KIND", "PROBES", "Session", "collect", "describe_error", "http", "request"]


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_error(exc: BaseException, url: str) -> str:
    """A short operator message for a failed request (without the target name)."""
    host, port = _address(url)
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"certificate verify failed: {cause.verify_message or cause.reason} ({host}:{port})"
            )
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused at {host}:{port} (is the service running?)"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {host}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed with {host}:{port}: {cause.reason or cause}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host}:{port} closed the connection without a valid response"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {host}:{port}: {str(exc) or type(exc).__name__}"[:200]
    return f"{type(exc).__name__} from {host}:{port}: {exc}".strip().splitlines()[0][:200]


def _is_verify_error(exc: BaseException) -> bool:
    return any(isinstance(c, ssl.SSLCertVerificationError) for c in _causes(exc))


# --- the probe ------------------------------------------------------------------------------


def _latency_limits(target: HttpTarget, limits: dict[str, float]) -> tuple[float, float]:
    """The endpoint's own latency lines win over the environment's thresholds.http."""
    warn, fail = target.latency_warn_ms, target.latency_fail_ms
    return (
        limits["latency_ms_warn"] if warn is None else warn,
        limits["latency_ms_fail"] if fail is None else fail,
    )


async def _check(
    target: HttpTarget, thresholds: Thresholds, transport: _Pools, timeout: float
) -> list[ProbeResult]:
    return [await _request(target, thresholds, transport, timeout)]


async def _request(
    target: HttpTarget, thresholds: Thresholds, transport: _Pools, timeout: float, body_out: bytes | None = None
) -> ProbeResult:
    limits = thresholds.of("http")
    url = mask_url(target.url)
    host, port = _address(target.url)
    # Starts now, when the request really starts, and waits longer while warroom's own event
    # loop stalls (up to 4 timeouts in all: httpx's own limit is only past that).
    scope = PatientTimeout(timeout)
    timeline = _Timeline(scope.stalled)
    base: dict[str, Any] = {
        "url": url,
        "method": target.method,
        "status_code": None,
        "json_ok": None,
    }
    https = target.url.startswith("https://")
    if https:
        base["cert_days_left"] = None
    body = b""
    der: bytes | None = None
    try:
        headers, send_url, secret = request_headers(target)
    except KeyError as exc:
        var = exc.args[0]
        return error_result(target.name, KIND, "http", f"{target.name}: environment variable {var} is not set "
                            "(headers_env)", **base, error=f"{var} is not set")
    try:
        async with scope:
            if isinstance(transport, _Pools) and not _FRAMING.intersection(map(str.lower, headers)):
                # The lean client's own interface: no httpx.Request to build (tests/perf/
                # bench_http_client.py); a configured Host or framing header takes httpx's way.
                response = await transport.request(target.method, send_url, headers, timeline, body_out or b"")
            else:
                request = httpx.Request(
                    target.method,
                    send_url,
                    headers=headers,
                    content=body_out,
                    extensions={
                        "timeout": httpx.Timeout(
                            (1 + EXTRA_TIMEOUTS) * timeout + _BACKSTOP_S
                        ).as_dict(),
                        "trace": timeline,
                    },
                )
                response = await transport.handle_async_request(request)
            try:
                async for chunk in response.stream:  # type: ignore[union-attr]
                    body += chunk
                    if len(body) >= MAX_BODY_BYTES:
                        break
                if https:
                    stream = response.extensions.get("network_stream")
                    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
                    if ssl_object is not None:
                        der = ssl_object.getpeercert(binary_form=True)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        where = _STAGE_WORDS.get(timeline.stage, "waiting for")
        return error_result(
            target.name,
            KIND,
            "http",
            f"{target.name}: timed out after {timeout:g}s{lag_words(scope.lag_s)} {where} {host}:{port}",
            elapsed_ms=max(0.0, time.perf_counter() - timeline.start - scope.stalled()) * 1000,
            **base,
            timeout=True,
            stage=timeline.stage,
            phases=timeline.phases(time.perf_counter()),
        )
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        message = describe_error(exc, target.url)
        if not _is_verify_error(exc):
            return error_result(
                target.name, KIND, "http", f"{target.name}: {message}", **base, error=message
            )
        # The server is up and speaks TLS, its certificate is the problem: a finding (fail),
        # and a second, unverified handshake still tells how long that certificate lasts.
        remaining = timeout - (time.perf_counter() - timeline.start)
        days = cert_days_left(await unverified_cert(*_address(target.url), remaining))
        base["cert_days_left"] = days
        expiry = f"; {days_words(days)}" if days is not None else ""
        return ProbeResult(
            target.name,
            KIND,
            "http",
            Status.FAIL,
            f"{target.name}: {message}{expiry}",
            data={**base, "error": message, "tls_verified": False},
        )
    if encoding := response.headers.get("content-encoding"):
        body = decoded(body, encoding)
    end = time.perf_counter()
    phases = timeline.phases(end)
    # From the request's first network event to its end, less the time warroom's own event
    # loop stalled meanwhile (the answer waited for warroom, not the other way round).
    latency: float = phases["total_ms"] or 0.0
    own_lag_ms = round(scope.stalled(timeline.first, end) * 1000, 2)
    data: dict[str, Any] = {**base, "status_code": response.status_code, "latency_ms": latency}
    data.update(phases=phases, reused_connection=phases["connect_ms"] is None)
    if own_lag_ms:
        data["loop_lag_ms"] = own_lag_ms
    issues: list[tuple[Status, str]] = []

    data["headers"] = shown_headers(response.headers, secret)
    code = response.status_code
    # Which check failed, for triggers: a slow answer is not a wrong one.
    data["status_ok"] = code in target.expect_status
    if target.expect_headers:
        data["headers_ok"] = all((response.headers.get(n) or "").strip() == w for n, w in target.expect_headers)
    if code not in target.expect_status:
        location = response.headers.get("location") if 300 <= code < 400 else None
        where = f" -> {mask_url(location)}" if location else ""
        issues.append((Status.FAIL, f"HTTP {code} (expected {expected_codes(target.expect_status)}){where}"))
    for name, want in target.expect_headers:
        got = response.headers.get(name)
        if got is None:
            issues.append((Status.FAIL, f"{name} is missing (expected {want})"))
        elif got.strip() != want:
            issues.append((Status.FAIL, f"{name} is {mask_url(got.strip())[:80]!r} (expected {want})"))
    body_checks(target, data, body, response.headers.get("content-type", ""), issues)

    warn_ms, fail_ms = _latency_limits(target, limits)
    data["latency_warn_ms"], data["latency_fail_ms"] = warn_ms, fail_ms
    slow = grade(latency, warn_ms, fail_ms)
    if slow is not Status.OK:
        limit = fail_ms if slow is Status.FAIL else warn_ms
        issues.append((slow, f"slow: {duration_ms(latency)} ({slow} at {duration_ms(limit)})"))

    if target.json_field and target.method != "HEAD":
        data["json_ok"], data["json_value"], problem = json_check(target, body)
        if problem:
            issues.append((Status.FAIL, problem))

    if "cert_days_left" in data:
        data["cert_days_left"] = cert_days_left(der)
        data["tls_verified"] = der is not None
        cert_status, problem = cert_issue(data["cert_days_left"], limits)
        if problem:
            issues.append((cert_status, problem))

    conditions(target, data, issues, worst(s for s, _ in issues))
    status = worst(s for s, _ in issues)
    if issues:
        summary = f"{target.name}: " + "; ".join(text for _, text in issues)
        summary += body_note(
            target, data, body, response.headers.get("content-type", "")
        )  # `· upstream: failing`
    else:
        summary = f"{target.name}: HTTP {code} in {duration_ms(latency)}"
    return ProbeResult(target.name, KIND, "http", status, summary, value=latency, data=data)


async def http(
    target: HttpTarget,
    thresholds: Thresholds | None = None,
    *,
    timeout: float = 2.0,
    session: Session | None = None,
) -> ProbeResult:
    """One GET/HEAD against the endpoint, graded; never raises."""
    thresholds = thresholds or Thresholds()
    own = session is None
    session = session or Session(target)
    try:
        results = await guarded(
            target.name,
            KIND,
            PROBES,
            _check(target, thresholds, session.transport, timeout),
            timeout=timeout + _BACKSTOP_S,
            describe_error=lambda exc: describe_error(exc, target.url),
        )
    finally:
        if own:
            await session.aclose()
    return results[0]


async def collect(
    target: HttpTarget,
    thresholds: Thresholds,
    *,
    timeout: float = 2.0,
    session: Session | None = None,
) -> list[ProbeResult]:
    """Every probe of one endpoint (there is one: "http"); never raises."""
    return [await http(target, thresholds, timeout=timeout, session=session)]


async def request(
    target: HttpTarget,
    thresholds: Thresholds | None = None,
    *,
    timeout: float = 2.0,
    session: Session | None = None,
    body: bytes | None = None,
) -> ProbeResult:
    """One request of a read method (GET/HEAD/OPTIONS, with an optional body), graded as the
    probe grades it; never raises. Runbook read steps call this."""
    thresholds = thresholds or Thresholds()
    own = session is None
    session = session or Session(target)
    try:
        results = await guarded(
            target.name,
            KIND,
            PROBES,
            _one(target, thresholds, session.transport, timeout, body),
            timeout=timeout + _BACKSTOP_S,
            describe_error=lambda exc: describe_error(exc, target.url),
        )
    finally:
        if own:
            await session.aclose()
    return results[0]


async def _one(target: HttpTarget, thresholds: Thresholds, transport: _Pools, timeout: float,
               body: bytes | None) -> list[ProbeResult]:
    return [await _request(target, thresholds, transport, timeout, body)]
