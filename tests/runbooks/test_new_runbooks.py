"""The runbooks for CORS, authentication, error rate, webhooks, rollbacks and Prometheus targets,
headless against the real sandbox: each scenario injected is found at the right step (and by
`warroom check --json`, with its data), the runbook is suggested first, and after healing
nothing is suggested and the walk passes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from probes.registry import collect_all
from runbooks.actions import execute_action
from runbooks.catalog import find_runbooks, rank_suggestions
from runbooks.loader import find_runbook, load_runbooks
from runbooks.model import Runbook, triggered
from runbooks.runner import Outcome, RunReport, run_runbook
from tests.conftest import SandboxHandle, warroom

WAIT_S = 20.0


def marks(report: RunReport) -> dict[str, str]:
    return {o.step_id: str(o.status) for o in report.outcomes if o.status is not Outcome.SKIPPED}


def summary(report: RunReport, step_id: str) -> str:
    return next((o.summary for o in report.outcomes if o.step_id == step_id), "")


async def walk_until(rb: Runbook, env: Any, wanted: dict[str, str], within: float = WAIT_S) -> RunReport:
    """Walk again until the marks are `wanted` (bounded); the last walk either way."""
    deadline = time.monotonic() + within
    while True:
        report = await run_runbook(rb, env)
        if marks(report) == wanted or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.5)


async def suggested(env: Any) -> list[str]:
    """The runbooks the cockpit suggests from one fresh reading of every probe, first first."""
    results = await collect_all(env)
    found = {rb.id: reasons for rb in load_runbooks()[0] if (reasons := triggered(rb, results))}
    return rank_suggestions(found, find_runbooks())


def check_reading(sandbox: SandboxHandle, target: str) -> dict[str, Any]:
    """`warroom check --json`'s reading of one target."""
    result = warroom("check", "--config", str(sandbox.config_path), "--json")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    [reading] = [r for r in json.loads(result.stdout) if r["target"] == target]
    return reading


@dataclass(frozen=True)
class Case:
    """A scenario, its runbook, the marks of its walk healthy and injected, the step that names
    the fault (a regex over its summary), and the target whose `warroom check` reading shows it."""

    scenario: str
    runbook: str
    healthy: dict[str, str]
    injected: dict[str, str]
    culprit_step: str
    culprit: str
    target: str


def _m(text: str) -> dict[str, str]:
    return dict(pair.split(":") for pair in text.split())


CASES = [
    Case("cors-broken", "cors-browser-calls-failing",
         _m("api-up:pass preflight-status:pass preflight-origin:pass preflight-methods:pass verify:pass"),
         _m("api-up:pass preflight-status:pass preflight-origin:fail compare-allow-list:manual cache-strips:manual "
            "fix-allow-list:manual verify:fail"),
         "preflight-origin", r"api-cors: .*Access-Control-Allow-Origin", "api-cors"),
    Case("auth-failure", "authentication-failures",
         _m("api-up:pass credential-accepted:pass verify:pass"),
         _m("api-up:pass credential-accepted:fail not-401:fail token-not-expired:manual same-secret:manual "
            "renew-credential:manual verify:fail"),
         "not-401", r"401 Unauthorized; the server says Bearer .*token not accepted", "api-account"),
    Case("error-rate", "high-error-rate",
         _m("api-up:pass error-share:pass verify:pass"),
         _m("api-up:pass error-share:fail not-a-deploy:manual database-ok:pass redis-ok:pass top-error:manual "
            "fix-failing-path:manual verify:fail"),
         "error-share", r"api-metrics: ", "api-metrics"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.scenario for c in CASES])
async def test_scenario_is_found_by_its_runbook_and_healed(sandbox: SandboxHandle, case: Case) -> None:
    rb = find_runbook(case.runbook)
    report = await walk_until(rb, sandbox.env, case.healthy)
    assert marks(report) == case.healthy and report.ok, marks(report)
    assert case.runbook not in await suggested(sandbox.env)
    with sandbox.scenario(case.scenario):
        report = await walk_until(rb, sandbox.env, case.injected)
        assert marks(report) == case.injected, marks(report)
        assert re.search(case.culprit, summary(report, case.culprit_step)), summary(report, case.culprit_step)
        assert (await suggested(sandbox.env))[:1] == [case.runbook]
        reading = check_reading(sandbox, case.target)
        assert reading["status"] == "fail", reading
        expect_reading(case.scenario, reading)
    report = await walk_until(rb, sandbox.env, case.healthy)
    assert marks(report) == case.healthy and report.ok, [o.to_json() for o in report.outcomes]
    assert case.runbook not in await suggested(sandbox.env)


def expect_reading(scenario: str, reading: dict[str, Any]) -> None:
    """What `warroom check --json` says about each fault, beyond its status."""
    data = reading["data"]
    if scenario == "cors-broken":
        headers = {k.lower(): v for k, v in data["headers"].items()}
        assert data["status_code"] == 204 and "access-control-allow-origin" not in headers, data
        assert "POST" in headers["access-control-allow-methods"]
    elif scenario == "auth-failure":
        assert data["status_code"] == 401, data
        assert "token not accepted" in {k.lower(): v for k, v in data["headers"].items()}["www-authenticate"]
        assert os.environ["WARROOM_SANDBOX_API_AUTH"] not in json.dumps(reading)  # never the token
    elif scenario == "error-rate":
        assert data["status_code"] == 200 and "http_requests_total" in json.dumps(data), data


async def test_rollback_runbook_checks_health_before_and_after(sandbox: SandboxHandle) -> None:
    rb = find_runbook("rollback-after-bad-deploy")
    manual = "deploy-is-cause:manual safe-to-roll-back:manual announce:manual roll-back:manual"
    healthy = _m(f"health-before:pass errors-before:pass {manual} health-after:pass verify:pass")
    with sandbox.scenario("error-rate"):
        report = await walk_until(rb, sandbox.env, _m(f"health-before:pass errors-before:fail {manual} health-after:pass verify:fail"))
        assert marks(report)["errors-before"] == "fail" and marks(report)["verify"] == "fail", marks(report)
        assert "version 2.5.0" in summary(report, "health-before"), summary(report, "health-before")
        # The error-rate runbook comes first: it finds out whether the deploy is the cause.
        ranked = await suggested(sandbox.env)
        assert ranked[:2] == ["high-error-rate", "rollback-after-bad-deploy"], ranked
    report = await walk_until(rb, sandbox.env, healthy)
    assert marks(report) == healthy and report.ok, marks(report)
    assert "version 2.4.0" in summary(report, "health-after")


async def test_webhook_failures_are_found_and_redelivered(sandbox: SandboxHandle) -> None:
    rb = find_runbook("webhook-deliveries-failing")
    healthy = _m("latest-delivery:pass none-failed:pass verify:pass")
    report = await walk_until(rb, sandbox.env, healthy)
    assert report.ok, marks(report)
    with sandbox.scenario("webhook-failures"):
        report = await walk_until(rb, sandbox.env, _m("latest-delivery:fail why-refused:manual receiver-accepts:manual "
                                                       f"redeliver:{redeliver_mark()} verify:fail"))
        assert marks(report)["latest-delivery"] == "fail", marks(report)
        assert re.search(r"last error: HTTP 503 from http://127\.0\.0\.1:\d+/hooks/orders", summary(report, "latest-delivery"))
        assert (await suggested(sandbox.env))[:1] == ["webhook-deliveries-failing"]
        reading = check_reading(sandbox, "webhooks")
        assert reading["status"] == "fail" and reading["data"]["json"]["failed"] > 0, reading
    # Healed: deliveries succeed again, the failed ones wait for the redelivery.
    report = await walk_until(rb, sandbox.env, _m(f"latest-delivery:pass none-failed:fail redeliver:{redeliver_mark()} verify:fail"))
    assert marks(report)["none-failed"] == "fail" and re.search(r"\d+ failed deliveries", summary(report, "none-failed"))
    step = rb.step("redeliver")
    assert step is not None and step.is_action
    # Refused unconfirmed and in read-only mode; nothing is sent.
    for confirmed, read_only in ((False, False), (True, True)):
        out = await execute_action(step, sandbox.env, confirmed=confirmed, read_only=read_only)
        assert out.status is Outcome.REFUSED and "POST http://127.0.0.1:" in out.summary, out.summary
    assert "failed deliveries" in summary(await run_runbook(rb, sandbox.env), "none-failed")
    # Confirmed: sent with the action's own credential (the ops token), never shown.
    out = await execute_action(step, sandbox.env, confirmed=True, read_only=False)
    assert out.status is Outcome.PASS and re.search(r"\d+ deliveries queued again", out.summary), out.summary
    assert os.environ["WARROOM_SANDBOX_OPS_AUTH"] not in json.dumps(out.to_json())
    report = await walk_until(rb, sandbox.env, healthy)
    assert report.ok, marks(report)
    assert "webhook-deliveries-failing" not in await suggested(sandbox.env)


def redeliver_mark() -> str:
    step = find_runbook("webhook-deliveries-failing").step("redeliver")
    assert step is not None
    return "refused" if step.is_action else "manual"


# --- Prometheus: a target it cannot scrape ------------------------------------------------------


async def test_prometheus_target_down_hands_over_to_the_service(prometheus_sandbox: SandboxHandle) -> None:
    env = prometheus_sandbox.env
    rb = find_runbook("prometheus-targets-down")
    healthy = _m("prom-answers:pass targets-up:pass series-present:pass scrapes-fast:pass verify:pass")
    report = await walk_until(rb, env, healthy)
    assert marks(report) == healthy and report.ok, [o.to_json() for o in report.outcomes]
    with prometheus_sandbox.scenario("service-down"):
        report = await walk_until(rb, env, _m("prom-answers:pass targets-up:fail api-up:pass payments-up:error"))
        assert marks(report) == _m("prom-answers:pass targets-up:fail api-up:pass payments-up:error"), marks(report)
        assert "1 down, first app/payments" in summary(report, "targets-up"), summary(report, "targets-up")
        assert report.handover == "service-unavailable"
        # Alertmanager's ScrapeTargetDown suggests the runbook (a few seconds: `for: 3s`).
        deadline = time.monotonic() + WAIT_S
        while not triggered(rb, await collect_all(env)) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
        reasons = triggered(rb, await collect_all(env))
        assert len(reasons) == 1 and "'ScrapeTargetDown' in data.firing_names" in reasons[0], reasons
    report = await walk_until(rb, env, healthy)
    assert marks(report) == healthy and report.ok, marks(report)
