"""The sandbox's tiny HTTP/1.1 server (keep-alive, optional TLS) on loopback: one `Service` per
sandbox web service, answering from an app first (http_app.ApiApp sees method, headers and body),
then from a route table; it can delay answers and fail a share of them for the fault scenarios.
The scenarios themselves, and which service they hit, are in tui/sandbox/http.py."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections.abc import Callable
from typing import Any

from tui.sandbox.base import LOOPBACK
from tui.sandbox.http_app import Reply, Request

# Keep-alive connections idle this long are closed, so a forgotten client costs nothing forever.
IDLE_CLOSE_S = 30.0
MAX_HEADER_LINES = 100

_REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

class Service:
    """One tiny HTTP/1.1 server (keep-alive) answering from an app, then from a route table."""

    def __init__(
        self, name: str, routes: dict[str, Any], *, tls: ssl.SSLContext | None = None,
        app: Callable[[Request], Reply | None] | None = None,
    ) -> None:
        self.name = name
        self.tls = tls  # tests serve HTTPS with a throw-away certificate
        self.routes = routes  # path -> JSON-able body, or a callable returning (status, body)
        self.app = app  # first say: any method, sees the headers; None passes to the table
        self.served: Callable[[str, str, int, float], None] | None = None  # (method, path, status, s)
        self.health_extra: Callable[[], dict[str, Any]] | None = None
        self.port = 0
        self.delay: tuple[float, float] | None = None
        self.error_share = 0.0
        self.health_status = 200
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[Any]] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.requests = 0

    async def listen(self) -> None:
        # Port 0 the first time (no race for a free port); the same port again after a heal.
        self.server = await asyncio.start_server(self._serve, LOOPBACK, self.port, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop open connections, so even kept-alive clients see the outage."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.close()
        # Closing the writers ends idle handlers; those sleeping in a delay are cancelled.
        for task in list(self.handlers):
            task.cancel()
        if self.handlers:
            await asyncio.wait(list(self.handlers), timeout=5)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
        ):
            pass
        except asyncio.CancelledError:
            # Only close() cancels these tasks. Ending normally keeps asyncio (3.11) from logging
            # a spurious "Exception in callback" for every cancelled connection handler.
            pass
        finally:
            self.handlers.discard(task)
            self.writers.discard(writer)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection should close."""
        async with asyncio.timeout(IDLE_CLOSE_S):
            line = await reader.readline()
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            await self._respond(writer, "GET", 400, {"error": "bad request line"}, keep=False)
            return False
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            key, _, value = raw.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        body = b""
        if length := int(headers.get("content-length", "0") or 0):
            if length > 1 << 20:
                await self._respond(writer, method, 413, {"error": "body too large"}, keep=False)
                return False
            body = await reader.readexactly(length)
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        self.requests += 1
        started = time.perf_counter()
        path = target.split("?", 1)[0]
        reply = self.app(Request(method, path, headers, body)) if self.app else None
        if reply is None:
            reply = Reply(*self._route(method, path))
        if self.delay:
            await asyncio.sleep(random.uniform(*self.delay))
        if self.served:
            self.served(method, path, reply.status, time.perf_counter() - started)
        await self._respond(writer, method, reply.status, reply.body, keep=keep, headers=reply.headers,
                            content_type=reply.content_type)
        return keep

    def _route(self, method: str, path: str) -> tuple[int, Any]:
        if method not in ("GET", "HEAD"):
            return 405, {"error": f"{method} not allowed"}
        if path == "/health":
            if self.health_status != 200:
                return self.health_status, {
                    "status": "degraded",
                    "service": self.name,
                    "checks": {"upstream": "failing"},
                }
            return 200, {
                "status": "ok",
                "service": self.name,
                "checks": {"database": "ok", "cache": "ok"},
                **(self.health_extra() if self.health_extra else {}),
            }
        if path not in self.routes:
            return 404, {"error": "not found", "path": path}
        if self.error_share and random.random() < self.error_share:
            # 503 (an upstream is unavailable), never 500: that status is error-rate's bad deploy.
            return 503, {"error": "upstream failure"}
        route = self.routes[path]
        return route() if callable(route) else (200, route)

    async def _respond(
        self, writer: asyncio.StreamWriter, method: str, status: int, body: Any, *, keep: bool,
        headers: dict[str, str] | None = None, content_type: str = "application/json",
    ) -> None:
        if status == 204 or body is None:
            payload = b""
        else:
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        length = "" if status == 204 else f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\n"
            f"{length}{extra}"
            f"Server: warroom-sandbox/{self.name}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
        ).encode("latin-1")
        writer.write(head if method == "HEAD" else head + payload)
        await writer.drain()
