"""Every sandbox scenario, headless: the most specific runbook is suggested first, its walk
reaches the step that names the culprit, every step's mark means one thing (✔ healthy, ✘ the
problem), and after healing the runbook is no longer suggested and its walk passes.

The same table drives the cockpit's Pilot test (tests/tui/test_runbook_scenarios.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass

import pytest

from probes.config import Environment
from probes.registry import collect_all
from runbooks.catalog import find_runbooks, rank_suggestions
from runbooks.loader import load_runbooks
from runbooks.model import triggered
from runbooks.runner import Outcome, RunReport, run_runbook
from tests.conftest import SandboxHandle
from tests.dockerd import REQUIRE_ENV

WAIT_S = 30.0  # a scenario shows (and heals) within seconds; consumers count as dead after 10 s


@dataclass(frozen=True)
class Walk:
    """A scenario, the runbook suggested first, the step that names the culprit and how
    (a regex over that step's result line), and the marks of the automatic steps that run in
    the walks of the runbooks it suggests (`step:pass|fail|error`; `step:?` is any or none:
    it depends on history or on whether a Docker engine runs)."""

    scenario: str
    runbook: str
    culprit_step: str
    culprit: str
    marks: dict[str, str]
    docker: bool = False


WALKS = [
    Walk("lock-contention", "lock-contention", "blocker-state",
         r"pid \d+ is idle in transaction for .*app sandbox-lock-holder, user shop: UPDATE accounts",
         {"lock-contention": "primary-up:pass find-blocker:fail blocker-state:fail verify:fail",
          # It hands over to lock-contention before blaming the queries that wait.
          "slow-queries-high-latency": "api-latency:pass lock-waits:fail",
          "idle-in-transaction": "find-idle:fail blocks-others:fail verify:fail"}),
    Walk("connection-exhaustion", "connection-pool-exhausted", "top-holders",
         r"sandbox-exhaust \(shop\) holds 3\d connections, 3\d idle",
         {"connection-pool-exhausted": "slots-in-use:fail idle-transactions:pass lock-queue:pass top-holders:fail verify:fail",
          "database-connection-failures": "primary-connects:pass slots-free:fail"}),
    Walk("idle-in-transaction", "idle-in-transaction", "find-idle",
         r"oldest pid \d+ \(sandbox-report-export, user shop, from 127\.0\.0\.1\) idle .* after: SELECT",
         {"idle-in-transaction": "find-idle:fail blocks-others:pass snapshot-age:pass verify:fail"}),
    Walk("replication-lag", "replication-lag", "replay-paused", r"replay is paused",
         {"replication-lag": "replica-connected:pass replay-delay:fail replay-paused:fail verify:fail"}),
    Walk("queue-backlog", "queue-backlog", "consumers-alive", r"longest idle .*: worker-1",
         {"queue-backlog": "queue-depth:fail consumers-alive:fail verify:fail"}),
    Walk("redis-memory", "redis-memory-pressure", "biggest-keys", r"warroom:ballast:\* holds .*MiB",
         {"redis-memory-pressure": "memory-usage:fail fragmentation:pass keyspace:fail memory-stats:pass "
                                   "queues-small:pass eviction-policy:fail biggest-keys:fail verify:fail"}),
    Walk("latency-spike", "slow-queries-high-latency", "api-latency", r"api: slow: 1\.\d s",
         # pg_stat_statements remembers the lock drills of this session: not the service's fault.
         {"slow-queries-high-latency": "api-latency:fail lock-waits:pass long-queries:pass slow-statements:? verify:fail"}),
    Walk("error-spike", "service-unavailable", "api-no-5xx", r"HTTP 503 from http://127\.0\.0\.1:\d+/health",
         {"service-unavailable": "database-up:pass cache-up:pass api-accepts:pass api-no-5xx:fail verify:fail verify-payments:pass"}),
    Walk("service-down", "service-unavailable", "payments-accepts", r"payments: connection refused at 127\.0\.0\.1:\d+",
         {"service-unavailable": "database-up:pass cache-up:pass api-accepts:pass api-no-5xx:pass payments-accepts:error "
                                 "containers:? verify:pass verify-payments:error"}),
    Walk("dependency-outage", "external-dependency-outage", "provider-status", r"provider reports indicator major",
         {"external-dependency-outage": "provider-status:fail payments-health:pass api-health:pass verify:fail verify-payments:pass"}),
    Walk("container-crashloop", "container-crash-loop", "crashing", r"crashing: \S+-batch",
         {"container-crash-loop": "containers:fail crashing:fail exit-details:pass last-logs:pass verify:fail"}, docker=True),
]
RAN = (Outcome.PASS, Outcome.FAIL, Outcome.ERROR)  # the outcomes that are marks of a check


def skip_without_docker(sandbox: SandboxHandle, walk: Walk) -> None:
    if walk.docker and "docker" not in sandbox.components:
        reason = "the sandbox runs without Docker (no engine answered when it started)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires one)", pytrace=False)
        pytest.skip(reason)


async def suggestions(env: Environment) -> list[str]:
    """The runbooks the cockpit would suggest from one fresh reading of every probe, first first."""
    results = await collect_all(env)
    matched = {rb.id: reasons for rb in load_runbooks()[0] if (reasons := triggered(rb, results))}
    return rank_suggestions(matched, find_runbooks())


def marks_of(report: RunReport) -> dict[str, str]:
    """The marks of the automatic steps that ran, by step id."""
    auto = {s.id for s in report.runbook.automatic_steps}
    return {o.step_id: str(o.status) for o in report.outcomes if o.step_id in auto and o.status in RAN}


def mismatches(expected: str, report: RunReport) -> list[str]:
    """Where the walk's marks differ from `expected` ("" when they agree)."""
    wanted = dict(pair.split(":") for pair in expected.split())
    got = marks_of(report)
    bad = [f"{sid}: wanted {mark}, got {got.get(sid, 'not run')}" for sid, mark in wanted.items()
           if mark != "?" and got.get(sid) != mark]
    bad += [f"{sid}: {got[sid]} but not expected to run" for sid in got if sid not in wanted]
    return bad


def summary_of(report: RunReport, step_id: str) -> str:
    return next((o.summary for o in report.outcomes if o.step_id == step_id), "")


@pytest.mark.parametrize("walk", WALKS, ids=[w.scenario for w in WALKS])
async def test_the_most_specific_runbook_comes_first_and_its_walk_names_the_culprit(sandbox: SandboxHandle, walk: Walk) -> None:
    skip_without_docker(sandbox, walk)
    runbooks = {rb.id: rb for rb in load_runbooks()[0]}
    with sandbox.scenario(walk.scenario):
        # Poll (bounded) until the fault shows everywhere it will: the suggestions settle and
        # every suggested runbook's walk carries the marks of the table.
        deadline = time.monotonic() + WAIT_S
        while True:
            ranked = await suggestions(sandbox.env)
            reports = {rid: await run_runbook(runbooks[rid], sandbox.env) for rid in ranked if rid in walk.marks}
            problems = [] if ranked[:1] == [walk.runbook] else [f"suggested first: {ranked}"]
            first = reports.get(walk.runbook)
            culprit = summary_of(first, walk.culprit_step) if first else ""
            if not re.search(walk.culprit, culprit):
                problems.append(f"{walk.culprit_step} does not name the culprit: {culprit!r}")
            problems += [f"{rid}: {m}" for rid, report in reports.items() for m in mismatches(walk.marks[rid], report)]
            if not problems or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        assert not problems, "\n".join(problems)
        # A failing check says what it found (the culprit), never a bare ✘.
        for report in reports.values():
            for outcome in report.outcomes:
                assert "max()" not in outcome.summary and "Traceback" not in outcome.summary, outcome.summary
    # Healed: the runbook is no longer suggested and its walk passes every check it runs.
    deadline = time.monotonic() + WAIT_S
    while True:
        ranked = await suggestions(sandbox.env)
        report = await run_runbook(runbooks[walk.runbook], sandbox.env)
        if (walk.runbook not in ranked and report.ok) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    assert walk.runbook not in ranked, ranked
    assert report.ok, [o.to_json() for o in report.outcomes if o.status in (Outcome.FAIL, Outcome.ERROR)]
