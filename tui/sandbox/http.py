"""Sandbox HTTP services on loopback ("api", "payments", a status page) and their fault scenarios.

Scenario -> service it hits:
  latency-spike      api        every answer delayed 1.2-1.5 s (over the 1 s fail line, under the 2 s timeout)
  error-spike        api        /health answers 503; 85 % of other requests answer 500/503
  service-down       payments   the listener and its open connections close: connection refused;
                                heal binds the same port again
  dependency-outage  statuspage /api/v2/status.json reports indicator "major"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from pathlib import Path
from typing import Any

from tui.sandbox.base import LOOPBACK, Component, SandboxError

# The spike stays below the probe timeout (2 s) so the probe measures it instead of timing out.
SPIKE_DELAY_S = (1.2, 1.5)
ERROR_SHARE = 0.85
# Keep-alive connections idle this long are closed, so a forgotten client costs nothing forever.
IDLE_CLOSE_S = 30.0
MAX_HEADER_LINES = 100

_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

_INDICATORS = {
    "none": "All Systems Operational",
    "major": "Major Service Outage",
}


class Service:
    """One tiny HTTP/1.1 server (keep-alive, GET/HEAD) answering from a route table."""

    def __init__(
        self, name: str, routes: dict[str, Any], *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.name = name
        self.tls = tls  # tests serve HTTPS with a throw-away certificate
        self.routes = routes  # path -> JSON-able body, or a callable returning (status, body)
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
        if length := int(headers.get("content-length", "0") or 0):
            await reader.readexactly(min(length, 1 << 20))
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        self.requests += 1
        status, body = self._route(method, target.split("?", 1)[0])
        if self.delay:
            await asyncio.sleep(random.uniform(*self.delay))
        await self._respond(writer, method, status, body, keep=keep)
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
            }
        if path not in self.routes:
            return 404, {"error": "not found", "path": path}
        if self.error_share and random.random() < self.error_share:
            return random.choice((500, 503)), {"error": "upstream failure"}
        route = self.routes[path]
        return route() if callable(route) else (200, route)

    async def _respond(
        self, writer: asyncio.StreamWriter, method: str, status: int, body: Any, *, keep: bool
    ) -> None:
        payload = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Server: warroom-sandbox/{self.name}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n"
        ).encode("latin-1")
        writer.write(head if method == "HEAD" else head + payload)
        await writer.drain()


class HttpComponent(Component):
    """The sandbox's web tier: two services and an external status page, all on 127.0.0.1."""

    name = "http"
    scenarios = ("latency-spike", "error-spike", "service-down", "dependency-outage")

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.indicator = "none"
        self.api = Service(
            "api", {"/": {"service": "api"}, "/api/orders": {"orders": [{"id": 1, "total": 42.0}]}}
        )
        self.payments = Service(
            "payments", {"/": {"service": "payments"}, "/api/payments": {"payments": []}}
        )
        self.status = Service(
            "statuspage",
            {
                "/": {"page": "status"},
                "/api/v2/status.json": self._status_json,
                "/api/v2/summary.json": self._status_json,
            },
        )
        self.services = (self.api, self.payments, self.status)

    def _status_json(self) -> tuple[int, Any]:
        return 200, {
            "page": {"id": "sandbox", "name": "Upstream Provider"},
            "status": {"indicator": self.indicator, "description": _INDICATORS[self.indicator]},
        }

    async def start(self) -> None:
        for service in self.services:
            await service.listen()

    def config(self) -> dict[str, Any]:
        return {
            "http": [
                # Tight lines so the latency spike reads fail within one refresh.
                {
                    "name": "api",
                    "url": f"{self.api.url}/health",
                    "latency_warn_ms": 300.0,
                    "latency_fail_ms": 1000.0,
                },
                {
                    "name": "payments",
                    "url": f"{self.payments.url}/health",
                    "latency_warn_ms": 300.0,
                    "latency_fail_ms": 1000.0,
                },
                {
                    "name": "statuspage",
                    "url": f"{self.status.url}/api/v2/status.json",
                    "json_field": "status.indicator",
                    "json_equals": "none",
                },
            ]
        }

    async def inject(self, scenario: str) -> str:
        if scenario == "latency-spike":
            self.api.delay = SPIKE_DELAY_S
            return f"api ({self.api.url}) now answers after {SPIKE_DELAY_S[0]:g}-{SPIKE_DELAY_S[1]:g} s"
        if scenario == "error-spike":
            self.api.error_share, self.api.health_status = ERROR_SHARE, 503
            return (
                f"api ({self.api.url}) /health answers 503, {ERROR_SHARE:.0%} of other requests 5xx"
            )
        if scenario == "service-down":
            await self.payments.close()
            return f"payments stopped listening on {self.payments.url} (connection refused)"
        if scenario == "dependency-outage":
            self.indicator = "major"
            return f'status page {self.status.url}/api/v2/status.json reports indicator "major"'
        return await super().inject(scenario)

    async def heal(self, scenario: str) -> str:
        if scenario == "latency-spike":
            self.api.delay = None
            return "api answers promptly again"
        if scenario == "error-spike":
            self.api.error_share, self.api.health_status = 0.0, 200
            return "api answers 200 again"
        if scenario == "service-down":
            if self.payments.server is None:
                try:
                    await self.payments.listen()
                except OSError as exc:
                    raise SandboxError(
                        f"payments: cannot listen on {self.payments.url} again: {exc.strerror}"
                    ) from None
            return f"payments listening on {self.payments.url} again"
        if scenario == "dependency-outage":
            self.indicator = "none"
            return 'status page reports indicator "none" again'
        return await super().heal(scenario)

    async def stop(self) -> None:
        for service in self.services:
            with contextlib.suppress(Exception):
                await service.close()

    def pids(self) -> dict[str, int]:
        return {}  # the services run inside the sandbox process itself
