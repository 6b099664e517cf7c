"""Sandbox HTTP services on loopback ("api", "payments", a status page, a webhook receiver) and
their fault scenarios. The api's CORS, token, /metrics and webhook routes are in http_app.py, the
server itself (keep-alive HTTP/1.1 on loopback) in http_server.py.

Scenario -> service it hits:
  latency-spike      api        every answer delayed 1.2-1.5 s (over the 1 s fail line, under the 2 s timeout)
  error-spike        api        /health answers 503; 85 % of other requests answer 503
  error-rate         api        a bad deploy (new version, counters from zero): 30 % of /api/orders
                                answer 500, counted in /metrics; /health stays 200. Heal rolls back
                                (the old version, counters from zero again)
  cors-broken        api        the CORS preflight no longer names the app's origin
  auth-failure       api        the server's token was rotated: /v1/account answers 401 to ours
  webhook-failures   receiver   the receiver answers 503 to every delivery: failed deliveries
                                climb until redelivered (POST /webhooks/redeliver) after the heal
  service-down       payments   the listener and its open connections close: connection refused;
                                heal binds the same port again
  dependency-outage  statuspage /api/v2/status.json reports indicator "major"
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from tui.sandbox import http_app
from tui.sandbox.base import Component, SandboxError
from tui.sandbox.http_app import ApiApp
from tui.sandbox.http_server import Service

# The spike stays below the probe timeout (2 s) so the probe measures it instead of timing out.
SPIKE_DELAY_S = (1.2, 1.5)
ERROR_SHARE = 0.85
METRICS_PASS = 'metric("http_requests_total", status="500") <= 0.02 * metric("http_requests_total")'

_INDICATORS = {
    "none": "All Systems Operational",
    "major": "Major Service Outage",
}


class HttpComponent(Component):
    """The sandbox's web tier: two services, an external status page and a webhook receiver, all
    on 127.0.0.1, with the api's simulated users and webhook sender running against them."""

    name = "http"
    scenarios = ("latency-spike", "error-spike", "service-down", "dependency-outage",
                 "error-rate", "cors-broken", "auth-failure", "webhook-failures")

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.indicator = "none"
        self.tokens = http_app.tokens_from(os.environ)
        self.app = ApiApp(self.tokens)
        self.api = Service(
            "api", {"/": {"service": "api"}, "/api/orders": {"orders": [{"id": 1, "total": 42.0}]}},
            app=self.app,
        )
        self.api.served = self.app.metrics.observe
        self.api.health_extra = self.app.health_extra
        payments_metrics = http_app.Metrics(http_app.GOOD_VERSION)
        self.payments = Service(
            "payments", {"/": {"service": "payments"}, "/api/payments": {"payments": []}},
            app=http_app.metrics_only(payments_metrics),
        )
        self.payments.served = payments_metrics.observe
        self.status = Service(
            "statuspage",
            {
                "/": {"page": "status"},
                "/api/v2/status.json": self._status_json,
                "/api/v2/summary.json": self._status_json,
            },
        )
        self.receiver = Service("receiver", {"/": {"service": "receiver"}}, app=http_app.receiver(self.app.webhooks))
        self.services = (self.api, self.payments, self.status, self.receiver)
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def _status_json(self) -> tuple[int, Any]:
        return 200, {
            "page": {"id": "sandbox", "name": "Upstream Provider"},
            "status": {"indicator": self.indicator, "description": _INDICATORS[self.indicator]},
        }

    @property
    def env_file(self) -> Path:
        return self.workdir.parent / http_app.ENV_FILE

    async def start(self) -> None:
        for service in self.services:
            await service.listen()
        http_app.write_env_file(self.env_file, self.tokens)
        self.app.webhooks.endpoint = f"{self.receiver.url}/hooks/orders"
        self.tasks = [asyncio.create_task(http_app.traffic(self.api.url, self.stopping)),
                      asyncio.create_task(http_app.deliver(self.app.webhooks, self.stopping))]

    def config(self) -> dict[str, Any]:
        targets: list[dict[str, Any]] = [
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
        return {"http": targets + self.rich_targets()}

    def rich_targets(self) -> list[dict[str, Any]]:
        """The targets that need the request/response keys of probes/config_http.py."""
        origin = http_app.ORIGIN
        return [
            {   # the browser's preflight before a POST with a token
                "name": "api-cors",
                "url": f"{self.api.url}/v1/orders",
                "method": "OPTIONS",
                "headers": {"Origin": origin, "Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "authorization, content-type"},
                "expect_status": [200, 204],
                "expect_headers": {"Access-Control-Allow-Origin": origin},
            },
            {   # the token comes from the environment (sandbox.env), never from this file
                "name": "api-account",
                "url": f"{self.api.url}/v1/account",
                "headers_env": {"Authorization": http_app.API_AUTH_ENV},
                "expect_status": 200,
            },
            {   # application errors (500) since the process started, from its own counters
                "name": "api-metrics",
                "url": f"{self.api.url}/metrics",
                "format": "prometheus",
                "pass": METRICS_PASS,
            },
            {
                "name": "webhooks",
                "url": f"{self.api.url}/webhooks/deliveries",
                "pass": "data.json.failed == 0 and data.json.last_attempt_ok == True",
                # reads need no credential; the redelivery action sends the ops token only
                "action_headers_env": {"Authorization": http_app.OPS_AUTH_ENV},
            },
        ]

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
        if scenario == "error-rate":
            self.app.error_share = http_app.BAD_DEPLOY_ERROR_SHARE
            self.app.metrics.restart(http_app.BAD_VERSION)
            return (f"api ({self.api.url}) deployed {http_app.BAD_VERSION}: {http_app.BAD_DEPLOY_ERROR_SHARE:.0%} of "
                    "/api/orders answer 500 (counted in /metrics); /health still 200")
        if scenario == "cors-broken":
            self.app.preflight_origin = False
            return f"api ({self.api.url}) preflight no longer allows origin {http_app.ORIGIN}"
        if scenario == "auth-failure":
            self.app.rotate_token()
            return f"api ({self.api.url}) rotated its token: /v1/account answers 401 to the configured one"
        if scenario == "webhook-failures":
            self.app.webhooks.receiver_failing = True
            return f"the webhook receiver ({self.app.webhooks.endpoint}) answers 503; failed deliveries climb"
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
        if scenario == "error-rate":
            self.app.error_share = 0.0
            self.app.metrics.restart(http_app.GOOD_VERSION)
            return f"api rolled back to {http_app.GOOD_VERSION} (counters from zero), no 500s"
        if scenario == "cors-broken":
            self.app.preflight_origin = True
            return f"api preflight allows origin {http_app.ORIGIN} again"
        if scenario == "auth-failure":
            self.app.accepted_auth = self.app.api_auth
            return "api accepts the configured token again"
        if scenario == "webhook-failures":
            self.app.webhooks.receiver_failing = False
            failed = self.app.webhooks.failed
            return (f"the webhook receiver accepts deliveries again; {failed} failed deliveries wait for a "
                    "redelivery (POST /webhooks/redeliver)")
        return await super().heal(scenario)

    async def stop(self) -> None:
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
            for task in self.tasks:
                task.cancel()
        for service in self.services:
            with contextlib.suppress(Exception):
                await service.close()

    def pids(self) -> dict[str, int]:
        return {}  # the services run inside the sandbox process itself
