"""A lean HTTP/1.1 client for the probe path: connections on asyncio streams, one exchange each.

Why not httpx's transport: a kept-alive probe through it costs ~1 ms of CPU, this client a
quarter of that (tests/perf/bench_http_client.py). Only what a probe needs: one request, status,
headers, a bounded body; no proxies, redirects, cookies or HTTP/2. The head is parsed here, not
by h11: its per-exchange state machine costs 0.07 ms, this parser 0.01 ms (same bench).

The keep-alive pools over these connections are probes/http_pool.py's. Errors are httpx's
exception types, with the OS / ssl error as `__cause__`, so the probe's
`describe_error` still finds `ssl.SSLCertVerificationError`, `ConnectionRefusedError` or
`socket.gaierror` in the chain. Timeouts are the caller's (`asyncio.timeout`): a request
cancelled at any point aborts its connection, which never goes back to the pool.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from probes.http_body import MAX_BODY_BYTES

if TYPE_CHECKING:
    from probes.http_pool import OriginPool

Trace = Callable[[str, dict[str, Any]], Awaitable[None]] | None

MAX_HEAD_BYTES = 64 * 1024  # a response's status line and headers, at most
_READ = 64 * 1024
# Safe to send again when a kept-alive connection turns out closed (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_NO_INFO: dict[str, Any] = {}


class Headers(Mapping[str, str]):
    """Response headers: case-insensitive; a repeated field reads as its values joined by ", "."""

    __slots__ = ("_map", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        fields: dict[str, str] = {}
        for name, value in raw:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            fields[key] = f"{fields[key]}, {text}" if key in fields else text
        self._map = fields

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._map.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)


def parse_head(head: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    """(version, status, reason, headers) of a response head ending in CRLF CRLF."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        # Folded lines (obsolete) and spaces before the colon are refused (RFC 9112 5.1, 5.2).
        if not sep or not name or name[-1:] in b" \t" or line[:1] in b" \t":
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:60]!r}")
        headers.append((name, value.strip(b" \t")))
    return version, int(code), reason, headers


def request_head(request: httpx.Request) -> bytes:
    """The request line and headers as sent (httpx.Request has added Host already)."""
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    lines.append(b"\r\n")
    return checked(b"\r\n".join(lines), len(lines))


def checked(head: bytes, lines: int) -> bytes:
    """`head` unless a header smuggled a line break into it (one count instead of a search
    per header: CR and LF only where the lines were joined, plus the final blank line)."""
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        raise httpx.LocalProtocolError("a header contains a line break")
    return head


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Connection:
    """One open TCP (or TLS) connection; `get_extra_info` is the httpcore network stream's."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.writer.get_extra_info(name, default)

    @property
    def dead(self) -> bool:
        """The server closed it (or it broke, or sent bytes nobody asked for) while it sat idle."""
        reader = self.reader
        return self.writer.is_closing() or reader.at_eof() or bool(getattr(reader, "_buffer", 0))

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()


async def connect(host: str, port: int, context: ssl.SSLContext | None, trace: Trace) -> Connection:
    """A new connection, TLS-wrapped when `context` is given, with httpcore's trace events."""
    addresses = [host]
    if not _is_ip(host):
        if trace is not None:
            await trace("connection.dns.started", {"host": host, "port": port})
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpx.ConnectError(f"DNS lookup failed for {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if trace is not None:
            await trace("connection.dns.complete", {"addresses": addresses})
    if trace is not None:
        await trace("connection.connect_tcp.started", {"host": host, "port": port})
    failure: OSError | None = None
    for address in addresses:  # in the resolver's order, as curl without happy eyeballs
        try:
            reader, writer = await asyncio.open_connection(address, port, limit=MAX_HEAD_BYTES)
            break
        except OSError as exc:
            failure = exc
    else:
        raise httpx.ConnectError(str(failure)) from failure
    try:  # from here on, a failure or a cancellation must not leave the socket open
        if trace is not None:
            await trace("connection.connect_tcp.complete", _NO_INFO)
        if context is not None:
            if trace is not None:
                await trace("connection.start_tls.started", _NO_INFO)
            try:
                await writer.start_tls(context, server_hostname=host)
            except (OSError, ssl.SSLError) as exc:
                raise httpx.ConnectError(str(exc)) from exc
            if trace is not None:
                await trace("connection.start_tls.complete", _NO_INFO)
    except BaseException:
        writer.transport.abort()
        raise
    return Connection(reader, writer)


class _Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer."""


class Response:
    """What httpcore's response offers the probe: status, headers, a bounded body stream."""

    def __init__(
        self,
        pool: OriginPool,
        conn: Connection,
        status: int,
        headers: Headers,
        framing: str,
        length: int,
        keep_alive: bool,
        trace: Trace,
    ) -> None:
        self.status_code = status
        self.headers = headers
        self.extensions: dict[str, Any] = {"network_stream": conn, "http_version": b"HTTP/1.1"}
        self.stream = self
        self._pool: OriginPool | None = pool
        self._conn = conn
        self._framing = framing  # "none", "length", "chunked" or "close"
        self._left = length  # bytes left in the body ("length") or in this chunk ("chunked")
        self._given = 0
        self._complete = framing == "none"
        self._keep_alive = keep_alive and framing != "close"
        self._trace = trace
        self._started = False

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        if self._complete or self._given >= MAX_BODY_BYTES or self._pool is None:
            raise StopAsyncIteration
        if not self._started and self._trace is not None:
            self._started = True
            await self._trace("http11.receive_response_body.started", _NO_INFO)
        try:
            data = await self._read()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx.RemoteProtocolError("the server closed the connection mid-body") from exc
        if not data:
            self._complete = True
            if self._trace is not None:
                await self._trace("http11.receive_response_body.complete", _NO_INFO)
            raise StopAsyncIteration
        room = MAX_BODY_BYTES - self._given
        if len(data) > room:
            data = data[:room]  # the rest is never read: the connection closes on aclose()
        self._given += len(data)
        return data

    async def _read(self) -> bytes:
        reader = self._conn.reader
        if self._framing == "length":
            if self._left <= 0:
                return b""
            data = await reader.read(min(self._left, _READ))
            if not data:
                raise httpx.RemoteProtocolError("the server closed the connection mid-body")
            self._left -= len(data)
            return data
        if self._framing == "close":
            return await reader.read(_READ)
        if self._framing == "chunked":
            if self._left == 0:
                line = await reader.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx.RemoteProtocolError(f"bad chunk size {line[:20]!r}") from None
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailer fields: not used
                    return b""
                self._left = size
            data = await reader.read(min(self._left, _READ))
            if not data:
                raise httpx.RemoteProtocolError("the server closed the connection mid-chunk")
            self._left -= len(data)
            if self._left == 0 and await reader.readexactly(2) != b"\r\n":
                raise httpx.RemoteProtocolError("a chunk does not end with CRLF")
            return data
        return b""

    async def aclose(self) -> None:
        # Nothing awaited: safe in a `finally` of a cancelled task.
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.release(self._conn, self._complete and self._keep_alive)

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self])


def _framing(method: str, status: int, version: bytes, headers: Headers) -> tuple[str, int, bool]:
    """(framing, content length, keep-alive) by RFC 9112 section 6.3."""
    tokens = headers.get("connection", "").lower()
    keep_alive = version == b"HTTP/1.1" and "close" not in tokens
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "none", 0, keep_alive
    coding = headers.get("transfer-encoding")
    if coding is not None:
        chunked = coding.lower().rsplit(",", 1)[-1].strip() == "chunked"
        # Both framings at once is a smuggling hazard: read it, do not reuse the connection.
        reuse = keep_alive and "content-length" not in headers
        return ("chunked", 0, reuse) if chunked else ("close", 0, False)
    length = headers.get("content-length")
    if length is None:
        return "close", 0, False
    values = {v.strip() for v in length.split(",")}
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise httpx.RemoteProtocolError(f"bad Content-Length {length[:30]!r}")
    return ("length", int(value), keep_alive) if int(value) else ("none", 0, keep_alive)


async def exchange(
    pool: OriginPool,
    conn: Connection,
    reused: bool,
    method: str,
    head: bytes,
    body: bytes,
    trace: Trace,
) -> Response:
    """Send one request on `conn` and read the answer's head."""
    if trace is not None:
        await trace("http11.send_request_headers.started", _NO_INFO)
    try:
        conn.writer.write(head + body if len(body) < _READ else head)
        if trace is not None:
            await trace("http11.send_request_headers.complete", _NO_INFO)
        if len(body) >= _READ:
            if trace is not None:
                await trace("http11.send_request_body.started", _NO_INFO)
            conn.writer.write(body)
            await conn.writer.drain()
            if trace is not None:
                await trace("http11.send_request_body.complete", _NO_INFO)
        if trace is not None:
            await trace("http11.receive_response_headers.started", _NO_INFO)
        while True:
            raw = await conn.reader.readuntil(b"\r\n\r\n")
            version, status, _, fields = parse_head(raw)
            if not 100 <= status < 200 or status == 101:
                break  # an interim answer (100 Continue, 103 Early Hints) precedes the real one
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and reused:
            raise _Stale from exc
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response."
            if not exc.partial
            else "the server closed the connection mid-head"
        ) from exc
    except (ConnectionResetError, BrokenPipeError) as exc:
        # A reset leaves what had arrived in the reader's buffer: only an empty one is stale.
        if reused and not getattr(conn.reader, "_buffer", b"x"):
            raise _Stale from exc
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("the response head is over 64 KiB") from exc
    except ssl.SSLError as exc:
        raise httpx.ReadError(str(exc)) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc
    headers = Headers(fields)
    framing, length, keep_alive = _framing(method, status, version, headers)
    if trace is not None:
        await trace("http11.receive_response_headers.complete", _NO_INFO)
    return Response(pool, conn, status, headers, framing, length, keep_alive, trace)
