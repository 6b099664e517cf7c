"""HTTP connections for the probes: one small pool per origin, shared sessions, and the phase timeline."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from probes.config import HttpTarget

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
                limits=httpx.Limits(
                    max_connections=PER_ORIGIN, max_keepalive_connections=PER_ORIGIN
                ),
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
