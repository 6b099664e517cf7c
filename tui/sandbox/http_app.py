"""The sandbox api's application behaviour: CORS, a token-protected endpoint, /metrics, webhooks.

What the api serves beyond its health check (tui/sandbox/http.py runs the server):
  OPTIONS /v1/*          CORS preflight for ORIGIN (Allow-Origin, -Methods, -Headers, Max-Age)
  GET /v1/orders         the orders, with Access-Control-Allow-Origin for ORIGIN
  GET /v1/account        needs `Authorization: Bearer <api token>`; 401 otherwise
  GET /metrics           Prometheus text: http_requests_total{method,route,status}, a latency
                         histogram, app_build_info{version}, process_start_time_seconds
  GET /webhooks/deliveries   the webhook sender's state (delivered, failed, last error)
  POST /webhooks/redeliver   needs `Authorization: Bearer <ops token>`; queues every failed
                             delivery again (failed back to 0) and answers 202

Tokens come from the sandbox's environment when set (`warroom demo` and the tests set them
before starting the sandbox, so the config's `headers_env` finds the same values), otherwise
they are generated; either way they are written to `sandbox.env` (mode 0600) next to
warroom.toml, for a shell: `. /tmp/drill/sandbox.env`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORIGIN = "http://app.sandbox.test"  # the browser app that calls the api (a fixed, fake origin)
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type"
API_AUTH_ENV = "WARROOM_SANDBOX_API_AUTH"  # "Bearer <token>": reads of /v1/account
OPS_AUTH_ENV = "WARROOM_SANDBOX_OPS_AUTH"  # "Bearer <token>": the redelivery action
ENV_FILE = "sandbox.env"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
GOOD_VERSION, BAD_VERSION = "2.4.0", "2.5.0"
BAD_DEPLOY_ERROR_SHARE = 0.3  # error-rate: this share of the traffic answers 500
TRAFFIC_INTERVAL_S = 0.2  # the simulated users' requests (5/s) that /metrics counts
DELIVERY_INTERVAL_S = 0.5  # one webhook event every half second
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROUTES = ("/", "/health", "/api/orders", "/v1/orders", "/v1/account", "/metrics",
          "/webhooks/deliveries", "/webhooks/redeliver")


def tokens_from(environ: Mapping[str, str]) -> dict[str, str]:
    """{variable: "Bearer <token>"}: the environment's when well-formed, new ones otherwise."""
    tokens = {}
    for var in (API_AUTH_ENV, OPS_AUTH_ENV):
        value = environ.get(var, "")
        scheme, _, token = value.partition(" ")
        tokens[var] = value if scheme == "Bearer" and len(token) >= 16 else f"Bearer {secrets.token_urlsafe(24)}"
    return tokens


def ensure_tokens() -> dict[str, str]:
    """Put the sandbox's tokens in this process's environment (kept when already set), so that a
    sandbox started from here and the config loaded here agree; returns them."""
    tokens = tokens_from(os.environ)
    os.environ.update(tokens)
    return tokens


def write_env_file(path: Path, tokens: Mapping[str, str]) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # tokens: readable by their owner only, like a real .env
    path.write_text("".join(f"export {var}='{value}'\n" for var, value in tokens.items()), encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any = None  # JSON-able; a str is sent as text (content_type)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class Metrics:
    """Counters and a latency histogram, written in the Prometheus text format (0.0.4).

    Written by hand: two metric families do not justify a dependency in the sandbox (warroom
    itself parses exposition with prometheus_client)."""

    def __init__(self, version: str) -> None:
        self.restart(version)

    def restart(self, version: str) -> None:
        """What a new process of the service starts with (a deploy, a rollback)."""
        self.version = version
        self.started = time.time()
        # The statuses a dashboard queries exist from the start, as client libraries do when a
        # label set is initialised: `metric(..., status="500")` reads 0, not "no such sample".
        self.counts: dict[tuple[str, str, str], int] = {("GET", "/api/orders", s): 0 for s in ("200", "500")}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.sum_s = 0.0

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"  # unknown paths must not grow the label set
        key = (method, route, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
        self.buckets[index] += 1
        self.sum_s += seconds

    def text(self) -> str:
        lines = ["# HELP http_requests_total Requests served, by method, route and status.",
                 "# TYPE http_requests_total counter"]
        for (method, route, status), n in sorted(self.counts.items()):
            lines.append(f'http_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
        lines += ["# HELP http_request_duration_seconds Time to serve a request.",
                  "# TYPE http_request_duration_seconds histogram"]
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), self.buckets, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {running}')
        lines += [f"http_request_duration_seconds_sum {self.sum_s:.6f}",
                  f"http_request_duration_seconds_count {running}",
                  "# HELP app_build_info The running build.", "# TYPE app_build_info gauge",
                  f'app_build_info{{version="{self.version}"}} 1',
                  "# HELP process_start_time_seconds When the process started (Unix time).",
                  "# TYPE process_start_time_seconds gauge",
                  f"process_start_time_seconds {self.started:.3f}"]
        return "\n".join(lines) + "\n"


@dataclass
class Webhooks:
    """The api's webhook sender: order events POSTed to a receiver, and what became of them."""

    endpoint: str = ""
    receiver_failing: bool = False  # webhook-failures, on the receiver's side
    delivered: int = 0
    failed: int = 0  # waiting for a redelivery
    queued: int = 0  # redeliveries asked for, not attempted yet
    last_ok: bool = True
    last_error: str | None = None
    last_error_at: float | None = None
    last_success_at: float | None = None

    def state(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint, "delivered": self.delivered, "failed": self.failed,
            "queued_for_redelivery": self.queued, "last_attempt_ok": self.last_ok,
            "last_error": self.last_error, "last_error_at": _iso(self.last_error_at),
            "last_success_at": _iso(self.last_success_at),
        }

    def record(self, ok: bool, error: str | None = None) -> None:
        self.last_ok = ok
        if ok:
            self.delivered += 1
            self.last_success_at = time.time()
        else:
            self.failed += 1
            self.last_error, self.last_error_at = error, time.time()


def _iso(at: float | None) -> str | None:
    return None if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _bearer_ok(headers: Mapping[str, str], expected: str) -> bool:
    return hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode())


class ApiApp:
    """The routes of the api that need headers, methods or state (the rest: Service's table)."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self.api_auth = tokens[API_AUTH_ENV]
        self.ops_auth = tokens[OPS_AUTH_ENV]
        self.accepted_auth = self.api_auth  # auth-failure rotates it on the server side
        self.cors_origin = ORIGIN
        self.preflight_origin = True  # cors-broken: the preflight stops naming the origin
        self.error_share = 0.0  # error-rate: the bad deploy's share of 500s
        self.metrics = Metrics(GOOD_VERSION)
        self.webhooks = Webhooks()

    def __call__(self, request: Request) -> Reply | None:
        path, method = request.path, request.method
        if path.startswith("/v1/") and method == "OPTIONS":
            return self._preflight(request)
        if path == "/metrics" and method in ("GET", "HEAD"):
            return Reply(200, self.metrics.text(), content_type=EXPOSITION)
        if path == "/v1/orders" and method in ("GET", "HEAD"):
            return Reply(200, {"orders": [{"id": 1, "total": 42.0}]}, self._cors(request))
        if path == "/v1/account" and method in ("GET", "HEAD"):
            if not _bearer_ok(request.headers, self.accepted_auth):
                why = "token missing" if "authorization" not in request.headers else "token not accepted"
                return Reply(401, {"error": "unauthorized", "detail": why},
                             {"WWW-Authenticate": f'Bearer realm="api", error="invalid_token", error_description="{why}"',
                              **self._cors(request)})
            return Reply(200, {"account": {"id": 7, "plan": "team", "seats": 12}}, self._cors(request))
        if path == "/webhooks/deliveries" and method in ("GET", "HEAD"):
            return Reply(200, self.webhooks.state())
        if path == "/webhooks/redeliver":
            if method != "POST":
                return Reply(405, {"error": f"{method} not allowed"}, {"Allow": "POST"})
            if not _bearer_ok(request.headers, self.ops_auth):
                return Reply(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="ops"'})
            queued, self.webhooks.failed = self.webhooks.failed, 0
            self.webhooks.queued += queued
            return Reply(202, {"queued": queued})
        if path == "/api/orders" and self.error_share and random.random() < self.error_share:
            return Reply(500, {"error": "TypeError: 'NoneType' object is not subscriptable", "version": self.metrics.version})
        return None

    def _cors(self, request: Request) -> dict[str, str]:
        if request.headers.get("origin") == self.cors_origin:
            return {"Access-Control-Allow-Origin": self.cors_origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    def _preflight(self, request: Request) -> Reply:
        headers = {"Access-Control-Allow-Methods": ALLOW_METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS,
                   "Access-Control-Max-Age": "600", "Vary": "Origin"}
        # cors-broken: a deploy dropped the app's origin from the allow-list; the rest stays.
        if self.preflight_origin and request.headers.get("origin") == self.cors_origin:
            headers["Access-Control-Allow-Origin"] = self.cors_origin
        return Reply(204, None, headers)

    def rotate_token(self) -> None:
        self.accepted_auth = f"Bearer {secrets.token_urlsafe(24)}"

    def health_extra(self) -> dict[str, Any]:
        return {"version": self.metrics.version, "started_at": _iso(self.metrics.started)}


def metrics_only(metrics: Metrics) -> Any:
    """An app that serves nothing but /metrics (the payments service's)."""

    def app(request: Request) -> Reply | None:
        if request.path == "/metrics" and request.method in ("GET", "HEAD"):
            return Reply(200, metrics.text(), content_type=EXPOSITION)
        return None

    return app


def receiver(webhooks: Webhooks) -> Any:
    """The receiving side of the webhooks (a partner's endpoint): 200, or 503 while failing."""

    def app(request: Request) -> Reply | None:
        if request.path != "/hooks/orders":
            return None
        if request.method != "POST":
            return Reply(405, {"error": f"{request.method} not allowed"}, {"Allow": "POST"})
        if webhooks.receiver_failing:
            return Reply(503, {"error": "receiver overloaded"}, {"Retry-After": "30"})
        return Reply(200, {"received": True})

    return app


async def traffic(api_url: str, stop: asyncio.Event) -> None:
    """The api's users: a steady trickle of real requests, so /metrics counts something."""
    import httpx

    async with httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=2.0) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                await client.get("/api/orders")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TRAFFIC_INTERVAL_S)


async def deliver(webhooks: Webhooks, stop: asyncio.Event) -> None:
    """Send one order event after another to the receiver; queued redeliveries go first."""
    import httpx

    sequence = 0
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while not stop.is_set():
            sequence += 1
            redelivery = webhooks.queued > 0
            if redelivery:
                webhooks.queued -= 1
            try:
                response = await client.post(webhooks.endpoint, json={"type": "order.created", "id": sequence,
                                                                      "redelivery": redelivery})
                if response.status_code < 300:
                    webhooks.record(True)
                else:
                    webhooks.record(False, f"HTTP {response.status_code} from {webhooks.endpoint}")
            except httpx.HTTPError as exc:
                webhooks.record(False, f"{type(exc).__name__} sending to {webhooks.endpoint}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DELIVERY_INTERVAL_S)
