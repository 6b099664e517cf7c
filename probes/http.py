"""HTTP endpoint probe: status, latency with a curl-like phase breakdown, JSON field, TLS expiry."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from probes.config import HttpTarget
from probes.http_body import MAX_BODY_BYTES, body_note, decoded, json_check
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

_STAGE_WORDS = {
    "pool": "waiting for a connection to",
    "connect_tcp": "connecting to",
    "start_tls": "in the TLS handshake with",
    "send_request_headers": "sending the request to",
    "send_request_body": "sending the request to",
    "receive_response_headers": "waiting for the response from",
    "receive_response_body": "reading the response body from",
}


def _verify_context() -> ssl.SSLContext:
    # trust_env=True here honours SSL_CERT_FILE / SSL_CERT_DIR (the operator's way to trust an
    # internal CA) while the client itself ignores proxy variables: timings through a proxy lie.
    return httpx.create_ssl_context(trust_env=True)


# Sent with every probe. `identity`: a health answer is small, and an uncompressed one needs
# no decoding (a server that compresses anyway is still decoded, see `_decoded`).
_HEADERS = {"User-Agent": "warroom-probe", "Accept": "application/json, */*;q=0.5", "Accept-Encoding": "identity"}


# Connections kept per origin: a health endpoint's requests are short, and a few connections
# serve the paths of one origin probed in the same slot of the round.
PER_ORIGIN = 4


class _Pools:
    """One small httpx connection pool per origin (scheme, host, port), created lazily.

    httpcore's pool matches every queued request against every connection on each change
    (quadratic: encode/httpcore#1035); one pool for 300 endpoints spent most of warroom's CPU
    there. Per origin, that work is bounded by PER_ORIGIN and the paths of one origin, so the
    cost grows linearly with the targets. The pools go to httpx's transport directly: a probe
    needs none of a client's cookies, auth, redirects or default headers."""

    def __init__(self, verify: ssl.SSLContext | bool | None = None) -> None:
        self._verify = _verify_context() if verify is None else verify
        self.pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}
        self.closed = False

    def pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self.pools.get(origin)
        if pool is None:
            pool = self.pools[origin] = httpx.AsyncHTTPTransport(
                verify=self._verify,
                trust_env=False,  # no proxy: timings through a proxy lie, and it may leave loopback
                limits=httpx.Limits(max_connections=PER_ORIGIN, max_keepalive_connections=PER_ORIGIN),
            )
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.pool(request.url).handle_async_request(request)

    @property
    def connections(self) -> list[Any]:
        """Every connection open or opening, over all origins."""
        return [c for pool in self.pools.values() for c in pool._pool.connections]  # noqa: SLF001

    async def aclose(self) -> None:
        self.closed = True
        pools, self.pools = list(self.pools.values()), {}
        for pool in pools:
            await pool.aclose()


class _Shared:
    """The pools and how many sessions use them."""

    def __init__(self, verify: ssl.SSLContext | bool | None = None) -> None:
        self.transport = _Pools(verify)
        self.users = 0
        self.closed = False


# One set of pools per running event loop, shared by every Session on it (httpx pools are
# loop-bound).
_POOL: dict[asyncio.AbstractEventLoop, _Shared] = {}


class Session:
    """Keeps HTTP connections alive between refreshes.

    Every `Session(target)` on the same event loop shares ONE set of pools (one per origin)
    for all endpoints; it closes when the last session's `aclose()` runs. Passing `verify` (an
    SSLContext, or False) gives this session private pools instead.
    """

    def __init__(
        self, target: HttpTarget | None = None, *, verify: ssl.SSLContext | bool | None = None
    ) -> None:
        self.target = target
        self._verify = verify
        self._shared: _Shared | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def transport(self) -> _Pools:
        if self._shared is None or self._shared.closed:
            if self._verify is not None:
                self._shared = _Shared(self._verify)
                self._shared.users = 1
            else:
                self._loop = asyncio.get_running_loop()
                shared = _POOL.get(self._loop)
                if shared is None or shared.closed:
                    shared = _POOL[self._loop] = _Shared()
                shared.users += 1
                self._shared = shared
        return self._shared.transport

    @property
    def closed(self) -> bool:
        """Whether this session's pool is closed (or was never opened)."""
        return self._shared is None or self._shared.closed

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None or shared.closed:
            return
        shared.users -= 1
        if shared.users > 0:
            return
        shared.closed = True
        if self._loop is not None and _POOL.get(self._loop) is shared:
            del _POOL[self._loop]
        await shared.transport.aclose()


def _no_stall(start: float, end: float) -> float:
    return 0.0


class _Timeline:
    """The httpcore `trace` extension callback: remembers when each phase started and ended.

    `stalled(start, end)` is how long warroom's own event loop stalled in between: a phase's
    duration leaves it out (the answer was there; warroom was busy elsewhere)."""

    def __init__(self, stalled: Callable[[float, float], float] = _no_stall) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.stage = "pool"
        self.stalled = stalled

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started" / "http11.receive_response_headers.complete"
        name = event.split(".", 1)[-1]
        self.marks[name] = time.perf_counter()
        phase, _, edge = name.rpartition(".")
        # Clean-up events after a cancellation ("response_closed") must not hide where it hung.
        if edge == "started" and phase in _STAGE_WORDS:
            self.stage = phase

    def span_ms(self, first: str, last: str) -> float | None:
        if first not in self.marks or last not in self.marks:
            return None
        return self._ms(self.marks[first], self.marks[last])

    def _ms(self, start: float, end: float) -> float:
        return round(max(0.0, end - start - self.stalled(start, end)) * 1000, 2)

    def phases(self, end: float) -> dict[str, float | None]:
        # Durations of each phase (not curl's cumulative times). connect/tls are None when a
        # kept-alive connection was reused: nothing was connected on this request.
        return {
            "connect_ms": self.span_ms("connect_tcp.started", "connect_tcp.complete"),
            "tls_ms": self.span_ms("start_tls.started", "start_tls.complete"),
            "ttfb_ms": self.span_ms(
                "send_request_headers.started", "receive_response_headers.complete"
            ),
            # From the first network event: the client's one-time setup on its first request
            # (lazy imports, ~30 ms) is not the endpoint's latency. It shows as wait_ms.
            "total_ms": self._ms(self.first, end),
            "wait_ms": round((self.first - self.start) * 1000, 2),
        }

    @property
    def first(self) -> float:
        return min(self.marks.values(), default=self.start)


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
    target: HttpTarget, thresholds: Thresholds, transport: _Pools, timeout: float
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
        async with scope:
            request = httpx.Request(
                target.method,
                target.url,
                headers=_HEADERS,
                extensions={"timeout": httpx.Timeout((1 + EXTRA_TIMEOUTS) * timeout + _BACKSTOP_S).as_dict(), "trace": timeline},
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

    code = response.status_code
    if code != target.expect_status:
        location = response.headers.get("location") if 300 <= code < 400 else None
        where = f" -> {mask_url(location)}" if location else ""
        issues.append((Status.FAIL, f"HTTP {code} (expected {target.expect_status}){where}"))

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

    status = worst(s for s, _ in issues)
    if issues:
        summary = f"{target.name}: " + "; ".join(text for _, text in issues)
        summary += body_note(target, data, body, response.headers.get("content-type", ""))  # `· upstream: failing`
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
