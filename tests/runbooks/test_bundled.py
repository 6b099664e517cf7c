"""Bundled runbooks: they load, steps have the intended kinds, and each finds its sandbox fault."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from probes.config import Environment, HttpTarget
from probes.registry import collect_all
from runbooks.loader import BUNDLED_DIR, find_runbook, load_runbooks, runbook_files
from runbooks.model import Runbook, triggered
from runbooks.runner import (
    Outcome,
    RunContext,
    RunReport,
    StepOutcome,
    describe_action,
    execute_action,
    run_runbook,
)
from tests.conftest import SandboxHandle, warroom
from tests.dockerd import REQUIRE_ENV
from tui.sandbox.http_server import Service

# Every step's kind, in document order: the classifier must agree with what each step is for
# (a terminate / cancel / restart / CONFIG SET / EVAL is an action, every read is not).
KINDS: dict[str, str] = {
    "database-connection-failures": "probe probe probe manual manual manual manual manual manual manual manual probe",
    "connection-pool-exhausted": "probe probe probe sql manual manual action manual manual action probe",
    "idle-in-transaction": "probe sql sql manual action probe",
    "slow-queries-high-latency": "probe probe probe probe manual manual action manual manual probe",
    "service-unavailable": "probe probe probe probe probe probe manual probe action manual manual manual manual manual manual probe probe",
    "redis-connection-failure": "probe redis probe probe redis manual manual manual manual manual action manual probe",
    "redis-memory-pressure": "probe probe redis redis probe redis probe action manual manual action manual redis probe",
    "queue-backlog": "probe redis redis probe manual manual manual redis manual manual probe",
    "container-crash-loop": "probe probe docker docker manual manual action docker manual action probe",
    "external-dependency-outage": "probe probe probe manual manual manual manual probe probe",
    "tls-certificate-dns": "probe manual probe probe manual manual manual probe",
    "cors-browser-calls-failing": "probe probe probe probe manual manual manual manual manual probe",
    "authentication-failures": "probe probe probe manual manual manual manual manual probe",
    "high-error-rate": "probe probe promql manual probe probe manual manual manual probe",
    "prometheus-targets-down": "promql promql probe probe promql promql manual manual manual probe manual promql",
    "webhook-deliveries-failing": "probe probe manual manual action probe",
    "rollback-after-bad-deploy": "probe probe manual manual manual manual probe probe",
}
# The sandbox's target names, which are also the conventional names the README documents.
SANDBOX_TARGETS = {"primary", "replica", "redis", "api", "payments", "statuspage", "docker",
                   "api-cors", "api-account", "api-metrics", "webhooks", "prom"}
WAIT_S = 20.0  # scenarios show (and heal) within a few seconds; never wait longer than this


def by_id(report: RunReport) -> dict[str, StepOutcome]:
    return {o.step_id: o for o in report.outcomes}


async def run_until(rb: Runbook, env: Environment, step: str, wanted: set[Outcome], within: float = WAIT_S) -> RunReport:
    """Run the runbook until `step` ends in one of `wanted` (bounded); the last report either way."""
    deadline = time.monotonic() + within
    while True:
        report = await run_runbook(rb, env)
        outcome = by_id(report)[step]
        if outcome.status in wanted or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.5)


async def suggested(rb: Runbook, env: Environment) -> list[str]:
    """Why the cockpit would suggest this runbook from one fresh reading of every probe."""
    return triggered(rb, await collect_all(env))


def cli_run(sandbox: SandboxHandle, runbook_id: str) -> tuple[int, dict[str, dict]]:
    """`warroom runbook run ID --config CFG --json`: exit status and the outcomes by step id."""
    result = warroom("runbook", "run", runbook_id, "--config", str(sandbox.config_path), "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["runbook"] == runbook_id
    return result.returncode, {s["step"]: s for s in document["steps"]}


# --- loading and classification -------------------------------------------------------------


def test_every_bundled_runbook_loads_without_problems() -> None:
    runbooks, problems = load_runbooks()
    assert problems == [], "\n".join(str(p) for p in problems)
    ids = {rb.id for rb in runbooks}
    assert set(KINDS) <= ids and {"lock-contention", "replication-lag"} <= ids
    assert len(runbook_files(BUNDLED_DIR)) == len(runbooks)  # no file was dropped silently
    listed = warroom("runbook", "list")
    assert listed.returncode == 0 and listed.stderr.strip() == "", listed.stderr
    for runbook_id in KINDS:
        assert re.search(rf"^{runbook_id}\s", listed.stdout, re.M), listed.stdout


@pytest.mark.parametrize("runbook_id", sorted(KINDS))
def test_step_kinds_targets_and_triggers(runbook_id: str) -> None:
    rb = find_runbook(runbook_id)
    assert " ".join(s.kind for s in rb.steps) == KINDS[runbook_id], [(s.id, s.kind) for s in rb.steps]
    assert rb.triggers, "every bundled runbook can be suggested from live readings"
    assert "Targets this runbook expects:" in rb.body
    for step in rb.steps:
        if step.automatic or step.is_action:
            assert step.target in SANDBOX_TARGETS, (step.id, step.target)
            assert f"`{step.target}`" in rb.body.split("## Symptoms")[0], f"{step.target} not named near the top"
    # Every runbook ends with a verification the checklist can run again after a fix.
    assert rb.steps[-1].automatic and rb.steps[-1].section == "Verify"
    shown = warroom("runbook", "show", str(rb.path))
    assert shown.returncode == 0 and shown.stderr.strip() == "", shown.stderr


def test_remediations_are_actions_and_name_their_target() -> None:
    """Each remediation is classified as an action whatever it looks like, and says why."""
    expected = {
        ("connection-pool-exhausted", "terminate-idle-transactions"): "pg_terminate_backend",
        ("connection-pool-exhausted", "terminate-idle-hoarders"): "pg_terminate_backend",
        ("idle-in-transaction", "terminate-idle"): "pg_terminate_backend",
        ("slow-queries-high-latency", "cancel-long-query"): "pg_cancel_backend",
        ("redis-memory-pressure", "drop-cache-prefix"): "EVAL",
        ("redis-memory-pressure", "memory-purge"): "MEMORY PURGE",
        ("redis-connection-failure", "set-idle-timeout"): "CONFIG SET",
        ("container-crash-loop", "restart-crashing"): "restart",
        ("container-crash-loop", "restart-unhealthy"): "restart",
        ("service-unavailable", "restart-failed"): "restart",
        ("webhook-deliveries-failing", "redeliver"): "POST",
    }
    runbooks = {rb.id: rb for rb in load_runbooks()[0]}
    for (runbook_id, step_id), word in expected.items():
        step = runbooks[runbook_id].step(step_id)
        assert step is not None and step.is_action, (runbook_id, step_id)
        assert step.classification is not None and word in step.classification.reason, step.classification


# --- against the healthy sandbox --------------------------------------------------------------


async def test_a_healthy_sandbox_passes_every_bundled_runbook(sandbox: SandboxHandle) -> None:
    has_docker = sandbox.env.docker is not None
    for runbook_id in sorted(KINDS):
        if runbook_id == "container-crash-loop" and not has_docker:
            continue
        rb = find_runbook(runbook_id)
        report = await run_runbook(rb, sandbox.env)
        for outcome in report.outcomes:
            # pg_stat_statements keeps the means of statements that waited in earlier lock
            # drills of this session: a fact about history, not about the healthy sandbox.
            if (runbook_id, outcome.step_id) == ("slow-queries-high-latency", "slow-statements"):
                continue
            assert outcome.status in (Outcome.PASS, Outcome.MANUAL, Outcome.SKIPPED), (runbook_id, outcome.to_json())
        assert not any(o.status == Outcome.REFUSED for o in report.outcomes), runbook_id
    # Nothing is wrong, so nothing is suggested (slow statements may remember earlier drills).
    results = await collect_all(sandbox.env)
    for rb in load_runbooks()[0]:
        if rb.id != "slow-queries-high-latency":
            assert triggered(rb, results) == [], rb.id


# --- PostgreSQL scenarios ------------------------------------------------------------------


async def test_connection_exhaustion(sandbox: SandboxHandle) -> None:
    pool, failures = find_runbook("connection-pool-exhausted"), find_runbook("database-connection-failures")
    with sandbox.scenario("connection-exhaustion"):
        report = await run_until(pool, sandbox.env, "slots-in-use", {Outcome.FAIL})
        steps = by_id(report)
        assert steps["slots-in-use"].status == Outcome.FAIL
        assert re.search(r"\b3\d of 40 slots in use", steps["slots-in-use"].summary), steps["slots-in-use"].summary
        holders = steps["top-holders"]
        assert holders.status == Outcome.FAIL and "sandbox-exhaust (shop) holds 3" in holders.summary, holders.summary
        assert steps["terminate-idle-transactions"].status == Outcome.SKIPPED
        refused = steps["terminate-idle-hoarders"]
        assert refused.status == Outcome.REFUSED
        # It would terminate exactly the idle sessions top-holders listed (issue 9 item 5).
        assert re.search(r"would terminate up to 3\d sessions on primary \(127\.0\.0\.1:\d+\) \(pids \d+", refused.summary), refused.summary
        assert steps["verify"].status == Outcome.FAIL and not report.ok
        assert "primary connections: value >= 0.8" in await suggested(pool, sandbox.env)
        # The connection failures runbook sees the same fault and hands over to this one.
        handed = await run_runbook(failures, sandbox.env)
        steps = by_id(handed)
        assert steps["primary-connects"].status == Outcome.PASS  # we still get a connection ...
        assert steps["slots-free"].status == Outcome.FAIL  # ... but the slots are (nearly) gone
        assert steps["replica-streams"].status == Outcome.SKIPPED and steps["auth-error"].status == Outcome.SKIPPED
        assert steps["see-pool-runbook"].status == Outcome.MANUAL
        assert handed.handover == "connection-pool-exhausted" and steps["verify"].status == Outcome.SKIPPED
        assert any("warroom runbook run connection-pool-exhausted" in n for n in handed.notes), handed.notes
    report = await run_until(pool, sandbox.env, "slots-in-use", {Outcome.PASS})
    steps = by_id(report)
    assert steps["slots-in-use"].status == Outcome.PASS and steps["top-holders"].status == Outcome.PASS
    assert report.ok, [o.to_json() for o in report.outcomes]


async def test_idle_in_transaction(sandbox: SandboxHandle) -> None:
    rb = find_runbook("idle-in-transaction")
    with sandbox.scenario("idle-in-transaction") as message:
        pid = int(re.search(r"pid (\d+) is idle in transaction", message).group(1))  # type: ignore[union-attr]
        # The sandbox's warning line is 3 s of idleness: poll until the session crosses it.
        report = await run_until(rb, sandbox.env, "find-idle", {Outcome.FAIL})
        steps = by_id(report)
        found = steps["find-idle"]
        assert found.status == Outcome.FAIL, found.summary
        assert f"oldest pid {pid} (sandbox-report-export" in found.summary and "monthly report export" in found.summary
        assert re.search(r", user \w+, from 127\.0\.0\.1\) idle (\d+(\.\d)? s|\d+m\d\ds) after", found.summary), found.summary
        assert steps["blocks-others"].status == Outcome.PASS and f"0 session(s) wait on pid {pid}" in steps["blocks-others"].summary
        assert steps["verify"].status == Outcome.FAIL
        assert "primary idle_in_transaction: value > 0" in await suggested(rb, sandbox.env)
        # The remediation names exactly this backend, and is not done unless confirmed.
        action = rb.step("terminate-idle")
        assert action is not None
        context = RunContext(rb.id, outcomes={"find-idle": found})
        assert describe_action(action, context, sandbox.env).startswith(f"terminate backend pid {pid} on primary (127.0.0.1:")
        declined = await execute_action(action, sandbox.env, context=context, confirmed=False, read_only=False)
        assert declined.status == Outcome.REFUSED
        still = by_id(await run_runbook(rb, sandbox.env))["find-idle"]
        assert f"oldest pid {pid}" in still.summary  # declined: the session is still there
        # The pool runbook takes Path A for the same fault and offers the bulk terminate.
        steps = by_id(await run_runbook(find_runbook("connection-pool-exhausted"), sandbox.env))
        assert steps["idle-transactions"].status == Outcome.FAIL and f"oldest pid {pid}" in steps["idle-transactions"].summary
        assert steps["terminate-idle-transactions"].status == Outcome.REFUSED
    report = await run_until(rb, sandbox.env, "find-idle", {Outcome.PASS})
    assert by_id(report)["find-idle"].status == Outcome.PASS and report.ok


# --- HTTP scenarios -------------------------------------------------------------------------


async def test_latency_spike(sandbox: SandboxHandle) -> None:
    rb = find_runbook("slow-queries-high-latency")
    with sandbox.scenario("latency-spike"):
        report = await run_until(rb, sandbox.env, "api-latency", {Outcome.FAIL})
        steps = by_id(report)
        slow = steps["api-latency"]
        assert slow.status == Outcome.FAIL and re.search(r"api: slow: 1\.\d s \(fail at 1\.0 s\)", slow.summary), slow.summary
        assert "first byte after 1" in slow.summary
        assert steps["long-queries"].status == Outcome.PASS  # not the database: the service
        assert steps["service-side"].status == Outcome.MANUAL and steps["verify"].status == Outcome.FAIL
        assert any(r.startswith("api http: data.latency_ms") for r in await suggested(rb, sandbox.env))
        # Slow is not down: the service unavailable runbook sees the API answering 200.
        available = by_id(await run_runbook(find_runbook("service-unavailable"), sandbox.env))
        assert available["api-no-5xx"].status == Outcome.PASS and "HTTP 200" in available["api-no-5xx"].summary
    report = await run_until(rb, sandbox.env, "api-latency", {Outcome.PASS})
    steps = by_id(report)
    assert steps["api-latency"].status == Outcome.PASS and steps["verify"].status == Outcome.PASS


def test_error_spike_through_the_cli(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("error-spike"):
        code, steps = cli_run(sandbox, "service-unavailable")
        assert code == 1
        assert steps["api-accepts"]["status"] == "pass"  # something listens ...
        failed = steps["api-no-5xx"]  # ... and answers with a server error
        assert failed["status"] == "fail" and "HTTP 503 from http://127.0.0.1:" in failed["summary"], failed
        assert failed["data"]["status_code"] == 503
        assert steps["error-log"]["status"] == "manual" and steps["containers"]["status"] == "skipped"
        assert steps["verify"]["status"] == "fail"
    code, steps = cli_run(sandbox, "service-unavailable")
    assert code == 0, steps
    assert steps["api-no-5xx"]["status"] == "pass" and steps["verify"]["status"] == "pass"


async def test_service_down(sandbox: SandboxHandle) -> None:
    rb = find_runbook("service-unavailable")
    port = next(t for t in sandbox.env.http if t.name == "payments").url.split(":")[2].split("/")[0]
    with sandbox.scenario("service-down"):
        report = await run_until(rb, sandbox.env, "payments-accepts", {Outcome.ERROR, Outcome.FAIL})
        steps = by_id(report)
        down = steps["payments-accepts"]
        assert down.status == Outcome.ERROR
        assert down.summary == f"payments: connection refused at 127.0.0.1:{port} (is the service running?)"
        assert steps["api-no-5xx"].status == Outcome.PASS and steps["payments-no-5xx"].status == Outcome.SKIPPED
        # Path A: nothing listens. With Docker the containers are fine (payments is not one).
        # Without it the Docker steps say they do not apply and the walk reaches the step
        # that does: the process on its host.
        containers, restart = steps["containers"], steps["restart-failed"]
        if sandbox.env.docker is not None:
            assert containers.status == Outcome.PASS and restart.status == Outcome.SKIPPED
        else:
            why = f"does not apply here: no Docker engine 'docker' in environment '{sandbox.env.name}'"
            assert containers.status == Outcome.SKIPPED and containers.summary.startswith(why), containers.summary
            assert restart.status == Outcome.SKIPPED and restart.summary.startswith(why), restart.summary
        assert steps["host-process"].status == Outcome.MANUAL
        assert steps["verify-payments"].status == Outcome.ERROR
        assert not any("max()" in o.summary or "Traceback" in o.summary for o in report.outcomes)
        assert "payments http: status == 'error'" in await suggested(rb, sandbox.env)
    report = await run_until(rb, sandbox.env, "payments-accepts", {Outcome.PASS})
    steps = by_id(report)
    assert steps["payments-accepts"].status == Outcome.PASS and steps["verify-payments"].status == Outcome.PASS
    assert report.ok, [o.to_json() for o in report.outcomes]


def test_dependency_outage_through_the_cli(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("dependency-outage"):
        code, steps = cli_run(sandbox, "external-dependency-outage")
        assert code == 1
        status = steps["provider-status"]
        assert status["status"] == "fail" and 'status.indicator == "major"' in status["summary"]
        assert "provider reports indicator major" in status["summary"]
        assert steps["payments-health"]["status"] == "pass"  # contained: our services still answer
        assert steps["degraded-mode"]["status"] == "manual" and steps["our-side"]["status"] == "skipped"
    code, steps = cli_run(sandbox, "external-dependency-outage")
    assert code == 0 and steps["provider-status"]["status"] == "pass" and steps["verify"]["status"] == "pass"


# --- Redis scenarios ------------------------------------------------------------------------


async def test_redis_memory(sandbox: SandboxHandle) -> None:
    rb = find_runbook("redis-memory-pressure")
    with sandbox.scenario("redis-memory"):
        report = await run_until(rb, sandbox.env, "memory-usage", {Outcome.FAIL})
        steps = by_id(report)
        memory = steps["memory-usage"]
        assert memory.status == Outcome.FAIL and re.search(r"of 64\.0 MiB \(9\d%\), policy noeviction", memory.summary), memory.summary
        assert steps["fragmentation"].status == Outcome.PASS  # it is data, not fragmentation
        assert steps["eviction-policy"].status == Outcome.FAIL and "maxmemory-policy noeviction" in steps["eviction-policy"].summary
        # The culprit is named: the ballast prefix holds nearly all the sampled memory, and the
        # drop action is filled in with it (refused headless, as every action is).
        biggest = steps["biggest-keys"]
        assert biggest.status == Outcome.FAIL and biggest.summary.startswith("redis: warroom:ballast:* holds "), biggest.summary
        assert biggest.data["top_prefixes"][0]["share"] > 0.8 and "MiB" in biggest.summary
        drop = steps["drop-cache-prefix"]
        assert drop.status == Outcome.REFUSED and "0 warroom:ballast:* 100000" in drop.summary, drop.summary
        assert steps["find-big-keys"].status == Outcome.MANUAL and steps["verify"].status == Outcome.FAIL
        assert await suggested(rb, sandbox.env) == ["redis memory: status in ['warn', 'fail']"]
    report = await run_until(rb, sandbox.env, "memory-usage", {Outcome.PASS})
    assert by_id(report)["memory-usage"].status == Outcome.PASS and report.ok


async def test_queue_backlog(sandbox: SandboxHandle) -> None:
    rb = find_runbook("queue-backlog")
    with sandbox.scenario("queue-backlog"):
        code, steps = cli_run(sandbox, "queue-backlog")
        depth = steps["queue-depth"]
        assert code == 1 and depth["status"] == "fail", depth
        assert re.search(r"celery depth \d+", depth["summary"]), depth["summary"]
        # The summary names the first few problems only (in discovery order): the data has all.
        depths = {q["name"]: q["depth"] for q in depth["data"]["queues"]}
        assert depths["celery"] > 0 and depths["events"] > 0, depths
        # The stopped consumer shows once it has been idle past 10 s: a bounded poll.
        report = await run_until(rb, sandbox.env, "consumers-alive", {Outcome.FAIL}, within=25.0)
        steps = by_id(report)
        alive = steps["consumers-alive"]
        assert alive.status == Outcome.FAIL and re.search(r"1 consumer\(s\), longest idle (\d\d+ s|\d+m\d\ds)", alive.summary), alive.summary
        assert ": worker-1 (wanted" in alive.summary, alive.summary  # the idle consumer, by name
        assert steps["why-stopped"].status == Outcome.MANUAL and steps["stuck-pending"].status == Outcome.SKIPPED
        assert await suggested(rb, sandbox.env) == ["redis queues: status in ['warn', 'fail']"]
    report = await run_until(rb, sandbox.env, "queue-depth", {Outcome.PASS})
    assert by_id(report)["queue-depth"].status == Outcome.PASS and report.ok


# --- Docker ---------------------------------------------------------------------------------


async def test_container_crashloop(sandbox: SandboxHandle) -> None:
    if "docker" not in sandbox.components:
        reason = "the sandbox runs without Docker (no engine answered when it started)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires one)", pytrace=False)
        pytest.skip(reason)
    assert sandbox.env.docker is not None
    batch = next(n for n in sandbox.env.docker.containers if n.endswith("-batch"))
    worker = next(n for n in sandbox.env.docker.containers if n.endswith("-worker"))
    rb = find_runbook("container-crash-loop")
    with sandbox.scenario("container-crashloop"):
        report = await run_until(rb, sandbox.env, "crashing", {Outcome.FAIL})
        steps = by_id(report)
        assert steps["containers"].status == Outcome.FAIL and f"{worker} unhealthy" in steps["containers"].summary
        crashing = steps["crashing"]
        assert crashing.status == Outcome.FAIL and f"crashing: {batch}" in crashing.summary, crashing.summary
        assert steps["exit-details"].status == Outcome.PASS and f"{batch}: " in steps["exit-details"].summary
        assert re.search(r"after \d+ restart", steps["exit-details"].summary), steps["exit-details"].summary
        restart = steps["restart-crashing"]
        assert restart.status == Outcome.REFUSED and f"restart container {batch} on Docker engine docker" in restart.summary
        assert steps["verify"].status == Outcome.FAIL
        assert await suggested(rb, sandbox.env) == ["docker containers: status == 'fail'"]
    report = await run_until(rb, sandbox.env, "containers", {Outcome.PASS})
    assert by_id(report)["containers"].status == Outcome.PASS and report.ok


# --- TLS: a real HTTPS server on loopback with throw-away certificates -------------------------


def make_cert(directory: Path, name: str, days: int) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@asynccontextmanager
async def https(cert: Path, key: Path) -> AsyncIterator[Environment]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    service = Service("api", {"/": {"service": "api"}}, tls=context)
    await service.listen()
    try:
        targets = (HttpTarget("api", f"{service.url}/health"), HttpTarget("payments", f"{service.url}/health"))
        yield Environment(name="tls", http=targets)
    finally:
        await service.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")
async def test_tls_certificate_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rb = find_runbook("tls-certificate-dns")
    short, renewed = make_cert(tmp_path, "short", 5), make_cert(tmp_path, "renewed", 90)
    async with https(*short) as env:
        # Not trusted by the default bundle: verification fails, and the result says so.
        steps = by_id(await run_runbook(rb, env))
        reachable = steps["api-reachable"]
        assert reachable.status == Outcome.FAIL and "certificate verify failed: self-signed certificate" in reachable.summary
        assert steps["is-certificate"].status == Outcome.MANUAL and steps["inspect-cert"].status == Outcome.MANUAL
        assert steps["dns-runbook"].status == Outcome.SKIPPED
        # Trusted (as an internal CA would be) but five days from expiry.
        monkeypatch.setenv("SSL_CERT_FILE", str(short[0]))
        steps = by_id(await run_runbook(rb, env))
        assert steps["api-reachable"].status == Outcome.PASS
        days = steps["api-cert-days"]
        assert days.status == Outcome.FAIL and re.search(r"certificate expires in (4\.9|5(\.0)?) days", days.summary), days.summary
        assert steps["verify"].status == Outcome.FAIL
    monkeypatch.setenv("SSL_CERT_FILE", str(renewed[0]))
    async with https(*renewed) as env:
        report = await run_runbook(rb, env)
        steps = by_id(report)
        assert steps["api-cert-days"].status == Outcome.PASS and re.search(r"certificate expires in (89\.9|90(\.0)?) days", steps["api-cert-days"].summary)
        assert report.ok, [o.to_json() for o in report.outcomes]
