"""HTTP connections for the probes: one small pool per origin, shared sessions, and the phase timeline."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from probes.config import HttpTarget
from probes.http_wire import (
    IDEMPOTENT,
    Connection,
    Response,
    Trace,
    _Stale,
    checked,
    connect,
    exchange,
    request_head,
)

_STAGE_WORDS = {
    "pool": "waiting for a connection to",
    "dns": "resolving",
    "connect_tcp": "connecting to",
    "start_tls": "in the TLS handshake with",
    "send_request_headers": "sending the request to",
    "send_request_body": "sending the request to",
    "receive_response_headers": "waiting for the response from",
    "receive_response_body": "reading the response body from",
}


def _verify_context(verify: ssl.SSLContext | bool | None = None) -> ssl.SSLContext:
    # trust_env=True here honours SSL_CERT_FILE / SSL_CERT_DIR (the operator's way to trust an
    # internal CA) while the client itself ignores proxy variables: timings through a proxy lie.
    if isinstance(verify, ssl.SSLContext):
        return verify
    return httpx.create_ssl_context(verify=verify is not False, trust_env=True)


class OriginPool:
    """At most `limit` connections to one origin; idle ones are kept for the next request
    unless `fresh` (a runbook timing step wants a new connection every time)."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext | None, limit: int, fresh: bool
    ) -> None:
        self.host, self.port, self.context = host, port, context
        self.limit, self.fresh = limit, fresh
        self.idle: list[Connection] = []
        self.busy: set[Connection] = set()
        self.opening = 0
        self.claims = 0  # probe targets served (_Pools.claim)
        self.closed = False
        self.waiters: deque[asyncio.Future[None]] = deque()

    @property
    def connections(self) -> list[Connection]:
        return [*self.idle, *self.busy]

    async def acquire(self, trace: Trace) -> tuple[Connection, bool]:
        """(connection, reused): an idle live one, else a new one once under the limit."""
        while True:
            while self.idle:
                conn = self.idle.pop()
                if not conn.dead:
                    self.busy.add(conn)
                    return conn, True
                conn.abort()
            if len(self.busy) + self.opening < self.limit:
                break
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: pass the turn on
                raise
        self.opening += 1
        try:
            conn = await connect(self.host, self.port, self.context, trace)
        except BaseException:
            self.opening -= 1
            self._wake()  # the slot it held is free again
            raise
        self.opening -= 1
        self.busy.add(conn)
        return conn, False

    def release(self, conn: Connection, reusable: bool) -> None:
        self.busy.discard(conn)
        if reusable and not self.fresh and not self.closed and len(self.idle) < self.limit:
            self.idle.append(conn)
        elif reusable:
            conn.close()
        else:
            conn.abort()
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True  # a response still being read closes its connection when done
        for conn in self.connections:
            conn.abort()
        self.idle, self.busy = [], set()


# Connections kept per origin: a health endpoint's requests are short, and a few connections
# serve the paths of one origin probed in the same slot of the round.
PER_ORIGIN = 4


class _Pools:
    """One small connection pool per origin (scheme, host, port), created lazily, on the lean
    client of probes/http_wire.py.

    httpcore's pool matches every queued request against every connection on each change
    (quadratic: encode/httpcore#1035), and even per origin a kept-alive request through httpx's
    transport costs ~1 ms of CPU; http_wire does it in about a quarter of that (tests/perf/
    bench_http_client.py). The interface is httpx's transport's, `handle_async_request`, so
    the probe builds an httpx.Request and reads the answer as it would from httpcore; `request`
    is the same without the httpx.Request, which is half of what is left.
    `fresh`: a new connection for every request, closed after it (runbook timing steps)."""

    def __init__(self, verify: ssl.SSLContext | bool | None = None, *, fresh: bool = False) -> None:
        self._verify = _verify_context(verify)
        self.fresh = fresh
        self.pools: dict[tuple[bytes, bytes, int | None], OriginPool] = {}
        self._urls: dict[str, tuple[OriginPool, bytes, bytes]] = {}
        self.closed = False

    def claim(self, url: str, by: int = 1) -> None:
        """A probe target on this origin comes (+1) or goes (-1): the origin's pool keeps one
        connection per target it serves (PER_ORIGIN at least), so targets that share an origin
        never queue for a connection and a slow origin never reads as timed out because of
        warroom's own pool (each target has one request in flight at most)."""
        try:
            pool = self.pool(httpx.URL(url))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.ConnectError):
            return  # the request reports the bad URL itself
        pool.claims = max(0, pool.claims + by)
        pool.limit = max(PER_ORIGIN, pool.claims)

    def pool(self, url: httpx.URL) -> OriginPool:
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self.pools.get(origin)
        if pool is None:
            if self.closed:
                raise httpx.ConnectError("the HTTP session is closed")
            https = url.raw_scheme == b"https"
            if not https and url.raw_scheme != b"http":
                raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url.scheme}")
            pool = self.pools[origin] = OriginPool(
                url.host,
                url.port or (443 if https else 80),
                self._verify if https else None,
                PER_ORIGIN,
                self.fresh,
            )
        return pool

    async def handle_async_request(self, request: httpx.Request) -> Response:
        pool = self.pool(request.url)
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        head = request_head(request)
        return await self._send(pool, request.method, head, body, request.extensions.get("trace"))

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        trace: Trace = None,
        body: bytes = b"",
    ) -> Response:
        """The same exchange without building an httpx.Request (about half of the CPU of a
        kept-alive probe, tests/perf/bench_http_client.py): each URL is parsed once, then only
        the head is assembled. `headers` must not hold Host or Content-Length."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 4096:
                self._urls.clear()
            parts = httpx.URL(url)
            parsed = self._urls[url] = (self.pool(parts), parts.raw_path, parts.netloc)
        pool, path, netloc = parsed
        lines = [method.encode("ascii") + b" " + path + b" HTTP/1.1", b"Host: " + netloc]
        try:
            lines += [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]
        except UnicodeEncodeError as exc:
            raise httpx.LocalProtocolError("a header is not Latin-1 text") from exc
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d" % len(body))
        lines.append(b"\r\n")
        head = checked(b"\r\n".join(lines), len(lines))
        return await self._send(pool, method, head, body, trace)

    async def _send(
        self, pool: OriginPool, method: str, head: bytes, body: bytes, trace: Trace
    ) -> Response:
        for attempt in (1, 2):
            conn, reused = await pool.acquire(trace)
            try:
                return await exchange(pool, conn, reused, method, head, body, trace)
            except _Stale as exc:
                # The server closed the kept-alive connection between requests and nothing of
                # the answer came: once more on a new connection, when that is safe to repeat.
                pool.release(conn, False)
                if attempt == 2 or method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    ) from exc.__cause__
            except BaseException:
                pool.release(conn, False)  # cancelled or broken: never back into the pool
                raise
        raise AssertionError("unreachable")

    @property
    def connections(self) -> list[Any]:
        """Every connection open, over all origins."""
        return [c for pool in self.pools.values() for c in pool.connections]

    async def aclose(self) -> None:
        self.closed = True
        pools, self.pools, self._urls = list(self.pools.values()), {}, {}
        for pool in pools:
            pool.close()


class _Shared:
    """The pools and how many sessions use them."""

    def __init__(self, verify: ssl.SSLContext | bool | None = None, *, fresh: bool = False) -> None:
        self.transport = _Pools(verify, fresh=fresh)
        self.users = 0
        self.closed = False


# One set of pools per running event loop, shared by every Session on it (connections are
# loop-bound).
_POOL: dict[asyncio.AbstractEventLoop, _Shared] = {}


class Session:
    """Keeps HTTP connections alive between refreshes.

    Every `Session(target)` on the same event loop shares ONE set of pools (one per origin)
    for all endpoints; it closes when the last session's `aclose()` runs. Passing `verify` (an
    SSLContext, or False) gives this session private pools instead; so does `fresh=True`, whose
    pools open a new connection for every request (DNS, connect and TLS timed each time, as a
    runbook timing step wants) and close it after.
    """

    def __init__(
        self,
        target: HttpTarget | None = None,
        *,
        verify: ssl.SSLContext | bool | None = None,
        fresh: bool = False,
    ) -> None:
        self.target = target
        self._verify = verify
        self._fresh = fresh
        self._shared: _Shared | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def transport(self) -> _Pools:
        if self._shared is None or self._shared.closed:
            if self._verify is not None or self._fresh:
                self._shared = _Shared(self._verify, fresh=self._fresh)
                self._shared.users = 1
            else:
                self._loop = asyncio.get_running_loop()
                shared = _POOL.get(self._loop)
                if shared is None or shared.closed:
                    shared = _POOL[self._loop] = _Shared()
                shared.users += 1
                self._shared = shared
            if self.target is not None:
                self._shared.transport.claim(self.target.url)
        return self._shared.transport

    @property
    def closed(self) -> bool:
        """Whether this session's pool is closed (or was never opened)."""
        return self._shared is None or self._shared.closed

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None or shared.closed:
            return
        if self.target is not None:
            shared.transport.claim(self.target.url, -1)
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
        # kept-alive connection was reused: nothing was connected on this request; dns is None
        # then too, and for an IP address (nothing to look up).
        return {
            "dns_ms": self.span_ms("dns.started", "dns.complete"),
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
