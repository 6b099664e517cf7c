"""The lean HTTP/1.1 client of the probes (probes/http_wire.py) against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from probes import http as probe
from probes.config import HttpTarget
from probes.http_body import MAX_BODY_BYTES
from probes.http_pool import PER_ORIGIN, Session, _Pools, _Timeline
from probes.result import Status
from probes.thresholds import Thresholds
from tests.probes.test_http import make_cert, needs_openssl, server_context

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'


class Raw:
    """A loopback server whose connections run `handler`; counts connections and peaks."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.open = 0
        self.peak = 0
        self.closed_by_client = asyncio.Event()
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def raw(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Raw]:
    server = Raw(handler, tls)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)


async def get(
    transport: _Pools, url: str, method: str = "GET", timeline: _Timeline | None = None
) -> tuple[Any, bytes]:
    """One request through the transport, as probes/http.py makes it; (response, body)."""
    request = httpx.Request(method, url, extensions={"trace": timeline or _Timeline()})
    response = await transport.handle_async_request(request)
    body = b""
    try:
        async for chunk in response.stream:
            body += chunk
    finally:
        await response.aclose()
    return response, body


async def test_keep_alive_reuses_one_connection_and_traces_httpcores_events() -> None:
    transport = _Pools()
    try:
        async with raw(keep_alive) as server:
            first, second = _Timeline(), _Timeline()
            response, body = await get(transport, f"{server.url}/health", timeline=first)
            assert (response.status_code, body) == (200, b'{"ok": true}')
            assert response.headers.get("CONTENT-TYPE") == "application/json"
            assert response.headers.get("x-missing", "-") == "-"
            await get(transport, f"{server.url}/other", timeline=second)
            assert server.connections == 1
            assert len(transport.connections) == 1
    finally:
        await transport.aclose()
    for name in (
        "connect_tcp.started",
        "connect_tcp.complete",
        "send_request_headers.started",
        "receive_response_headers.complete",
        "receive_response_body.complete",
    ):
        assert name in first.marks, name
    assert "dns.started" not in first.marks  # an IP address: nothing to look up
    phases = second.phases(second.first + 0.001)
    assert phases["connect_ms"] is None and phases["dns_ms"] is None and phases["ttfb_ms"] >= 0
    assert not transport.connections


async def test_the_light_interface_sends_the_same_request_without_httpx_request() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(OK)

    transport = _Pools()
    try:
        async with raw(record) as server:
            for _ in range(2):
                response = await transport.request("GET", f"{server.url}/h?x=1", {"Accept": "*/*"})
                assert response.status_code == 200 and await response.aread() == b'{"ok": true}'
                await response.aclose()
            with pytest.raises(httpx.LocalProtocolError):
                await transport.request("GET", f"{server.url}/", {"X-A": "1\r\nX-B: 2"})
            response = await transport.request("POST", f"{server.url}/p", {}, body=b"{}")
            await response.aclose()
            assert server.connections == 1
    finally:
        await transport.aclose()
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    assert heads[0] == f"GET /h?x=1 HTTP/1.1\r\n{host}Accept: */*\r\n\r\n".encode()
    # The body follows its head; the server above reads heads only, so it is the next "head".
    assert heads[2] == f"POST /p HTTP/1.1\r\n{host}Content-Length: 2\r\n\r\n".encode()


async def test_a_probe_sends_its_configured_host_header_once() -> None:
    """A virtual host behind an address (`headers = { Host = ... }`): the probe's request goes
    httpx's way then, so the server sees that one Host, not the address's as well."""
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(OK)

    async with raw(record) as server:
        plain = HttpTarget("plain", f"{server.url}/health")
        vhost = HttpTarget("vhost", f"{server.url}/health", headers=(("Host", "shop.example.test"),))
        session = Session(plain)
        try:
            for target in (plain, vhost):
                result = await probe.http(target, Thresholds(), timeout=2.0, session=session)
                assert result.status is Status.OK, result.summary
        finally:
            await session.aclose()
    assert [h.lower().count(b"\r\nhost: ") for h in heads] == [1, 1], heads
    assert b"\r\nHost: 127.0.0.1:" in heads[0] and b"shop.example.test" in heads[1].lower(), heads


async def test_a_host_name_is_resolved_and_timed_as_dns_ms() -> None:
    async with raw(keep_alive) as server:
        target = HttpTarget("api", f"http://localhost:{server.port}/health")
        result = await probe.http(target, Thresholds(), timeout=3.0)
    assert result.status is Status.OK, result.summary
    assert result.data["phases"]["dns_ms"] is not None and result.data["phases"]["dns_ms"] >= 0
    assert result.data["phases"]["connect_ms"] is not None


async def test_chunked_body_with_extensions_and_trailers_then_reuse() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;note=x\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n"
            )

    transport = _Pools()
    try:
        async with raw(chunked) as server:
            for _ in range(3):
                response, body = await get(transport, f"{server.url}/")
                assert (response.status_code, body) == (200, b"hello world")
            assert server.connections == 1
    finally:
        await transport.aclose()


async def test_connection_close_is_not_reused() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()  # until the client hangs up

    transport = _Pools()
    try:
        async with raw(closing) as server:
            for _ in range(2):
                response, body = await get(transport, f"{server.url}/")
                assert body == b"ok"
            assert server.connections == 2
            assert not transport.connections
    finally:
        await transport.aclose()


async def idle_closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers one request as if keeping the connection, then closes it (an idle timeout)."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await writer.drain()


async def test_a_kept_alive_connection_closed_by_the_server_is_retried_once_for_get() -> None:
    transport = _Pools()
    try:
        async with raw(idle_closer) as server:
            await get(transport, f"{server.url}/")
            await asyncio.sleep(0.05)  # the server has closed it, the client may not know yet
            response, body = await get(transport, f"{server.url}/")
            assert (response.status_code, body) == (200, b'{"ok": true}')
            assert server.connections == 2
    finally:
        await transport.aclose()


async def test_a_request_lost_on_a_kept_alive_connection_is_sent_again_once_for_get() -> None:
    # The race the idle check cannot see: the server closes just as the request goes out.
    async def drops_its_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        if server.connections == 1:
            await reader.readuntil(b"\r\n\r\n")  # read, then hang up without a byte
            return
        await keep_alive(reader, writer)

    transport = _Pools()
    try:
        async with raw(drops_its_second) as server:
            await get(transport, f"{server.url}/")
            response, body = await get(transport, f"{server.url}/")
            assert (response.status_code, body) == (200, b'{"ok": true}')
            assert server.connections == 2
    finally:
        await transport.aclose()


async def test_bytes_nobody_asked_for_retire_an_idle_connection() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(OK + b"HTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n")

    transport = _Pools()
    try:
        async with raw(chatty) as server:
            await get(transport, f"{server.url}/")
            await asyncio.sleep(0.05)
            response, _ = await get(transport, f"{server.url}/")
            assert response.status_code == 200  # not the stray answer left on the old one
            assert server.connections == 2
    finally:
        await transport.aclose()


async def test_a_stale_connection_is_not_retried_for_post() -> None:
    # The server closes without reading: "dead" cannot be seen before the request is sent
    # when the FIN arrives just after it; simulate by a server that reads and closes silently.
    async def read_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await reader.readuntil(b"\r\n\r\n")  # the second request, never answered

    transport = _Pools()
    try:
        async with raw(read_then_drop) as server:
            await get(transport, f"{server.url}/", method="POST")
            with pytest.raises(httpx.RemoteProtocolError) as caught:
                await get(transport, f"{server.url}/", method="POST")
            assert server.connections == 1  # not sent again
            assert "without a valid response" in probe.describe_error(caught.value, server.url)
    finally:
        await transport.aclose()


async def test_a_hung_server_times_out_and_the_connection_is_dropped() -> None:
    hung = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        hung.set()
        await reader.read()  # returns when the client closes

    transport = _Pools()
    try:
        async with raw(stall) as server:
            timeline = _Timeline()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await get(transport, f"{server.url}/", timeline=timeline)
            assert hung.is_set() and timeline.stage == "receive_response_headers"
            assert not transport.connections  # cancelled: aborted, never back in the pool
            async with asyncio.timeout(2):
                while server.open:  # and the server sees it go
                    await asyncio.sleep(0.01)
    finally:
        await transport.aclose()


async def test_a_body_cut_by_the_timeout_closes_the_connection() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        await reader.read()

    transport = _Pools()
    try:
        async with raw(trickle) as server:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await get(transport, f"{server.url}/")
            assert not transport.connections
    finally:
        await transport.aclose()


async def test_a_huge_body_is_read_only_up_to_the_bound() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        size = 8 * MAX_BODY_BYTES
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"x" * 65536
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    transport = _Pools()
    try:
        async with raw(huge) as server:
            async with asyncio.timeout(10):
                _, body = await get(transport, f"{server.url}/")
            assert len(body) == MAX_BODY_BYTES
            assert not transport.connections  # the rest was never read: not reusable
    finally:
        await transport.aclose()


async def test_a_refused_port_is_a_connect_error_naming_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        transport = _Pools()
        try:
            with pytest.raises(httpx.ConnectError) as caught:
                await get(transport, f"http://127.0.0.1:{port}/")
        finally:
            await transport.aclose()
    assert probe.describe_error(caught.value, f"http://127.0.0.1:{port}/") == (
        f"connection refused at 127.0.0.1:{port} (is the service running?)"
    )


async def test_garbage_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    transport = _Pools()
    try:
        async with raw(garbage) as server:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(transport, f"{server.url}/")
            assert not transport.connections
    finally:
        await transport.aclose()


async def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    transport = _Pools()
    try:
        async with raw(answers) as server:
            assert (await get(transport, f"{server.url}/", method="HEAD"))[1] == b""
            response, body = await get(transport, f"{server.url}/")
            assert (response.status_code, body) == (204, b"")
            assert server.connections == 1
    finally:
        await transport.aclose()


async def test_at_most_per_origin_connections_at_once() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.05)
            writer.write(OK)

    transport = _Pools()
    try:
        async with raw(slow) as server:
            results = await asyncio.gather(
                *(get(transport, f"{server.url}/{i}") for i in range(PER_ORIGIN * 3))
            )
            assert all(body == b'{"ok": true}' for _, body in results)
            assert server.peak == PER_ORIGIN
    finally:
        await transport.aclose()


async def test_a_request_waiting_for_a_connection_times_out_in_the_pool_stage() -> None:
    release = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await release.wait()
            writer.write(OK)

    transport = _Pools()
    try:
        async with raw(held) as server:
            busy = [
                asyncio.create_task(get(transport, f"{server.url}/{i}")) for i in range(PER_ORIGIN)
            ]
            await asyncio.sleep(0.1)
            timeline = _Timeline()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await get(transport, f"{server.url}/late", timeline=timeline)
            assert timeline.stage == "pool" and not timeline.marks
            release.set()
            assert all(body == b'{"ok": true}' for _, body in await asyncio.gather(*busy))
            # The cancelled waiter took no slot: a new request gets a kept-alive connection.
            response, body = await get(transport, f"{server.url}/after")
            assert body == b'{"ok": true}' and server.connections == PER_ORIGIN
    finally:
        await transport.aclose()


async def test_targets_sharing_a_slow_origin_never_queue_for_a_connection() -> None:
    """More targets on one origin than PER_ORIGIN, each answered after 0.6 s with a 1 s timeout:
    queued behind each other they would time out (warroom's own pool making the reading worse);
    the pool keeps one connection per target, so every one reads its real 0.6 s."""
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.6)
            writer.write(OK)

    async with raw(slow) as server:
        targets = [HttpTarget(f"t{i}", f"{server.url}/{i}") for i in range(PER_ORIGIN * 2)]
        sessions = [Session(t) for t in targets]
        try:
            results = await asyncio.gather(*(probe.http(t, Thresholds(), timeout=1.0, session=s)
                                             for t, s in zip(targets, sessions, strict=True)))
            # Slow (warn at 500 ms), never timed out.
            assert [r.status for r in results] == [Status.WARN] * len(targets), [r.summary for r in results]
            assert all(500 <= (r.value or 0) < 1000 for r in results), [r.value for r in results]
            assert server.peak == len(targets)
        finally:
            for s in sessions:
                await s.aclose()
        # With the targets gone, the origin's pool is back to its usual size.
        lone = Session(targets[0])
        assert lone.transport.pool(httpx.URL(server.url)).limit == PER_ORIGIN
        await lone.aclose()


async def test_a_fresh_session_connects_every_time_and_keeps_nothing() -> None:
    async with raw(keep_alive) as server:
        target = HttpTarget("api", f"{server.url}/health")
        session = Session(target, fresh=True)
        try:
            first = await probe.http(target, Thresholds(), timeout=2.0, session=session)
            second = await probe.http(target, Thresholds(), timeout=2.0, session=session)
            assert not session.transport.connections
        finally:
            await session.aclose()
        shared = Session(target)  # the shared pools are not the fresh ones
        assert shared.transport is not session.transport
        await shared.aclose()
    for result in (first, second):
        assert result.status is Status.OK, result.summary
        assert result.data["reused_connection"] is False
        assert result.data["phases"]["connect_ms"] is not None
    assert server.connections == 2


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("wire"), "wire", days=30, san="IP:127.0.0.1")


@needs_openssl
async def test_tls_verified_reused_with_the_peer_certificate(cert) -> None:  # type: ignore[no-untyped-def]
    transport = _Pools(ssl.create_default_context(cafile=str(cert[0])))
    try:
        async with raw(keep_alive, tls=server_context(*cert)) as server:
            timeline = _Timeline()
            response, body = await get(transport, f"{server.url}/", timeline=timeline)
            der = (
                response.extensions["network_stream"]
                .get_extra_info("ssl_object")
                .getpeercert(binary_form=True)
            )
            assert der == ssl.PEM_cert_to_DER_cert(cert[0].read_text())
            assert body == b'{"ok": true}'
            assert timeline.phases(timeline.first + 0.01)["tls_ms"] > 0
            await get(transport, f"{server.url}/")
            assert server.connections == 1
    finally:
        await transport.aclose()


@needs_openssl
async def test_an_untrusted_certificate_keeps_the_verify_error_in_the_chain(cert) -> None:  # type: ignore[no-untyped-def]
    transport = _Pools()  # the system's trust store: a self-signed certificate fails
    try:
        async with raw(keep_alive, tls=server_context(*cert)) as server:
            with pytest.raises(httpx.ConnectError) as caught:
                await get(transport, f"{server.url}/")
            assert not transport.connections
    finally:
        await transport.aclose()
    assert probe._is_verify_error(caught.value)  # noqa: SLF001
    assert probe.describe_error(caught.value, server.url).startswith(
        "certificate verify failed: self-signed certificate"
    )
