"""Prometheus and Alertmanager as sources, against the real stack the sandbox runs on loopback."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from probes import alertmanager, prometheus
from probes.config_sources import PrometheusTarget
from probes.result import Status
from runbooks.alert_links import runbook_for
from runbooks.catalog import find_runbooks
from tests.prometheusd import binaries_or_skip
from tui.sandbox.base import free_port
from tui.sandbox.prometheus import RULES

HERE = Path(__file__).parent


async def _collect_until(target: Any, env: Any, ready: Any, deadline_s: float = 15.0) -> dict[str, Any]:
    """The results by probe, once `ready(results)` holds (the first scrapes take a second)."""
    deadline = time.monotonic() + deadline_s
    while True:
        results = {r.probe: r for r in await prometheus.collect(target, env.thresholds, timeout=5.0)}
        if ready(results) or time.monotonic() > deadline:
            return results
        await asyncio.sleep(0.3)


async def test_collect_reads_the_standard_exporter_metrics(prometheus_sandbox: Any) -> None:
    env = prometheus_sandbox.env
    target = env.prometheus[0]
    results = await _collect_until(target, env, lambda r: r["pg_up"].value == 2 and r["probe_success"].value == 3)
    assert {r.data["source"] for r in results.values()} == {"prometheus"}
    assert results["pg_up"].status is Status.OK and results["pg_up"].value == 2, results["pg_up"].summary
    assert results["redis_up"].value == 1, results["redis_up"].summary
    assert results["probe_success"].value == 3  # api, payments, statuspage through blackbox
    assert results["redis_memory_bytes"].value and results["redis_memory_bytes"].value > 100_000
    # Every series is kept, labelled with the warroom target it watches.
    instances = {s["labels"]["instance"] for s in results["pg_up"].data["series"]}
    assert instances == {"primary", "replica"}
    lag = results["pg_replication_bytes"].data["series"]
    assert [s["labels"]["application_name"] for s in lag] == ["replica"]


async def test_health_query_fails_on_a_zero(prometheus_sandbox: Any) -> None:
    """A health query (up, pg_up, redis_up, probe_success) reads fail when one series is 0."""
    env = prometheus_sandbox.env
    # An overridden query, as a config's `queries = { pg_up = "..." }` gives: the replica reads 0.
    expr = 'pg_up{instance="primary"} or (pg_up{instance="replica"} * 0)'
    target = PrometheusTarget("prom", env.prometheus[0].url, queries=(("pg_up", expr),))
    result = (await prometheus.collect(target, env.thresholds, timeout=5.0))[0]
    assert result.status is Status.FAIL and result.summary == "prom: pg_up: 1/2 down (replica)", result.summary
    assert result.data["query"] == expr and result.value == 1


async def test_query_range_has_about_one_point_per_column(prometheus_sandbox: Any) -> None:
    target = prometheus_sandbox.env.prometheus[0]
    result = await prometheus.query_range(target, 'up{job="postgres"}', range_s=60, columns=30, timeout=5.0)
    assert result.status is Status.OK, result.summary
    assert result.data["step_s"] == 2 and result.data["source"] == "prometheus"
    assert result.data["series"] and all(len(s["points"]) <= 31 for s in result.data["series"])


def test_range_step_never_asks_for_more_than_11000_points() -> None:
    for range_s, columns in ((7 * 86400, 100_000), (3600, 20_000), (60, 1), (1, 5000)):
        step = prometheus.range_step(range_s, columns)
        assert range_s / step + 1 <= prometheus.MAX_POINTS, (range_s, columns, step)
    assert prometheus.range_step(3600, 120) == 30


async def test_api_errors_are_results(prometheus_sandbox: Any) -> None:
    target = prometheus_sandbox.env.prometheus[0]
    bad = await prometheus.query(target, "sum(", timeout=5.0)
    assert bad.status is Status.ERROR and "bad_data" in bad.summary and bad.data["source"] == "prometheus"
    gone = PrometheusTarget("gone", f"http://127.0.0.1:{free_port()}")
    refused = await prometheus.query(gone, "up", timeout=2.0)
    assert refused.status is Status.ERROR and "connection refused" in refused.summary
    am = await alertmanager.collect(gone, prometheus_sandbox.env.thresholds, timeout=2.0)  # type: ignore[arg-type]
    assert am[0].status is Status.ERROR and "Alertmanager" in am[0].summary and am[0].data["source"] == "alertmanager"


async def test_replication_lag_fires_an_alert_that_names_its_runbook(prometheus_sandbox: Any) -> None:
    """The rule's `for: 2s`, a 1 s scrape and evaluation, Alertmanager: firing within seconds."""
    env = prometheus_sandbox.env
    target = env.alertmanager[0]
    before = (await alertmanager.collect(target, env.thresholds, timeout=5.0))[0]
    assert before.status is Status.OK and before.data["firing"] == 0, before.summary
    with prometheus_sandbox.scenario("replication-lag"):
        started = time.monotonic()
        while True:
            result = (await alertmanager.collect(target, env.thresholds, timeout=5.0))[0]
            lag = [a for a in result.data.get("alerts", []) if a["name"] == "PostgresReplicationLag"]
            if lag or time.monotonic() - started > 20:
                break
            await asyncio.sleep(0.5)
    assert lag, f"no PostgresReplicationLag alert within 20 s: {result.summary}"
    alert = lag[0]
    assert result.status is Status.WARN and "PostgresReplicationLag" in result.summary
    assert alert["state"] == "firing" and alert["severity"] == "warning"
    assert alert["labels"]["instance"] == "primary" and alert["starts_at"]
    assert alert["runbook_url"] == "warroom://runbook/replication-lag"
    entry = runbook_for(alert["runbook_url"], find_runbooks())
    assert entry is not None and entry.id == "replication-lag"


def test_rules_pass_their_promtool_tests() -> None:
    promtool = binaries_or_skip().get("promtool")
    if not promtool:
        pytest.fail("promtool is missing from the prometheus package", pytrace=False)
    done = subprocess.run([promtool, "test", "rules", "prometheus_rules_test.yml"], cwd=HERE,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_every_rule_names_a_bundled_runbook() -> None:
    entries = find_runbooks()
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert rules
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        assert runbook_for(url, entries) is not None, f"{rule['alert']}: {url} names no bundled runbook"


def test_gate_skips_without_the_binaries_and_fails_when_they_are_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine where none of the programs is installed
    monkeypatch.delenv("WARROOM_REQUIRE_PROMETHEUS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="prometheus: not installed"):
        binaries_or_skip()
    monkeypatch.setenv("WARROOM_REQUIRE_PROMETHEUS", "1")
    with pytest.raises(pytest.fail.Exception, match="WARROOM_REQUIRE_PROMETHEUS=1 requires them"):
        binaries_or_skip()
