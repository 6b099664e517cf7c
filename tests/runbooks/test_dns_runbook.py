"""The DNS resolution failure runbook, headless, against the sandbox's real name server:
`dns-failure` injected (SERVFAIL, then slow answers), found at the right step, and healed."""

from __future__ import annotations

import asyncio
import json
import re
import time

from probes.registry import collect_all
from runbooks.loader import find_runbook
from runbooks.model import Runbook, triggered
from runbooks.runner import Outcome, RunReport, run_runbook
from tests.conftest import SandboxHandle, warroom
from tui.sandbox.dns import SERVFAIL_S

RUNBOOK = "dns-resolution-failure"
WAIT_S = 20.0


def marks(report: RunReport) -> dict[str, str]:
    return {o.step_id: str(o.status) for o in report.outcomes if o.status is not Outcome.SKIPPED}


def summary(report: RunReport, step_id: str) -> str:
    return next(o.summary for o in report.outcomes if o.step_id == step_id)


async def run_until(rb: Runbook, sandbox: SandboxHandle, done: str, within: float = WAIT_S) -> RunReport:
    """Run the walk again until `done` ("step:mark") is in it (bounded); the last walk either way."""
    step, mark = done.split(":")
    deadline = time.monotonic() + within
    while True:
        report = await run_runbook(rb, sandbox.env)
        if marks(report).get(step) == mark or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.3)


def test_the_runbook_loads_and_names_its_targets() -> None:
    rb = find_runbook(RUNBOOK)
    assert " ".join(s.kind for s in rb.steps) == "probe probe probe probe manual manual manual manual manual manual probe"
    top = rb.body.split("## Symptoms")[0]
    assert "Targets this runbook expects:" in top
    for step in rb.automatic_steps:
        assert f"`{step.target}`" in top, step.target
    assert rb.steps[-1].automatic and rb.steps[-1].section == "Verify"


async def test_dns_failure_is_found_step_by_step_and_healed(sandbox: SandboxHandle) -> None:
    rb = find_runbook(RUNBOOK)
    server = next(t for t in sandbox.env.dns if t.name == "api-dns").server
    report = await run_runbook(rb, sandbox.env)
    assert report.ok and marks(report) == {"server-up": "pass", "name-resolves": "pass", "right-address": "pass",
                                           "answers-fast": "pass", "verify": "pass"}, marks(report)
    assert triggered(rb, await collect_all(sandbox.env)) == []
    with sandbox.scenario("dns-failure"):
        injected = time.monotonic()
        # First SERVFAIL: the server is up (it accepts connections), its answers are the problem.
        report = await run_runbook(rb, sandbox.env)
        assert time.monotonic() - injected < SERVFAIL_S, "the walk came too late for the SERVFAIL phase"
        assert marks(report) == {"server-up": "pass", "name-resolves": "fail", "compare-answers": "manual",
                                 "fix-record": "manual", "verify": "fail"}, marks(report)
        assert f"SERVFAIL from {server}" in summary(report, "name-resolves"), summary(report, "name-resolves")
        assert summary(report, "name-resolves").endswith(f"· SERVFAIL from {server} (wanted data.rcode == 'NOERROR' and len(data.values) > 0)")
        assert triggered(rb, await collect_all(sandbox.env)), "a failing DNS probe suggests the runbook"
        # Then slow answers: the name resolves, to the right address, but late.
        report = await run_until(rb, sandbox, "answers-fast:fail")
        assert marks(report) == {"server-up": "pass", "name-resolves": "pass", "right-address": "pass", "answers-fast": "fail",
                                 "resolver-load": "manual", "relieve-resolver": "manual", "verify": "fail"}, marks(report)
        assert re.search(rf"answered in 1\.\d s by {re.escape(server)}", summary(report, "answers-fast")), summary(report, "answers-fast")
        # `warroom check --json` reports the same reading, with its data.
        result = warroom("check", "--config", str(sandbox.config_path), "--json")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        [reading] = [r for r in json.loads(result.stdout) if r["kind"] == "dns"]
        assert reading["status"] == "fail" and reading["data"]["rcode"] == "NOERROR", reading
        assert reading["data"]["query_ms"] >= 1000 and reading["data"]["server"] == server
        [port] = [r for r in json.loads(result.stdout) if r["kind"] == "tcp"]
        assert port["status"] == "ok" and port["data"]["connect_ms"] > 0, port
    report = await run_until(rb, sandbox, "verify:pass")
    assert report.ok, [o.to_json() for o in report.outcomes]
    assert triggered(rb, await collect_all(sandbox.env)) == []
