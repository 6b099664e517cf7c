"""```promql runbook steps: parsed as reads, run against the real Prometheus of the sandbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runbooks.loader import parse_runbook
from runbooks.runner import run_step

RUNBOOK = '''---
id: prom-check
title: Prom check
severity: low
---

# Prom check

1. **Every exporter is scraped.**
   ```promql target=prom pass="value == 1"
   min(up)
   ```
2. **Fewer than one scrape target is up.**
   ```promql target=prom pass="value < 1"
   count(up)
   ```
3. **Bad PromQL is an error.**
   ```promql target=prom
   sum(
   ```
'''


def test_promql_blocks_load_as_reads() -> None:
    runbook, problems = parse_runbook(RUNBOOK, "prom.md")
    assert not problems and runbook is not None
    assert [(s.kind, s.target_kind, s.automatic) for s in runbook.steps] == [("promql", "prometheus", True)] * 3
    assert runbook.steps[0].classification is not None and runbook.steps[0].classification.read_only
    _, problems = parse_runbook(RUNBOOK.replace("   min(up)\n", ""), "prom.md")
    assert any("holds no query" in str(p) for p in problems), problems


async def test_promql_steps_pass_fail_and_error_on_the_real_prometheus(prometheus_sandbox: Any) -> None:
    runbook, _ = parse_runbook(RUNBOOK, "prom.md")
    assert runbook is not None
    env = prometheus_sandbox.env
    deadline = time.monotonic() + 15  # the first scrapes of a fresh Prometheus take a second or two
    while True:
        outcomes = [await run_step(step, env, timeout=5.0) for step in runbook.steps]
        if str(outcomes[0].status) == "pass" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [str(o.status) for o in outcomes] == ["pass", "fail", "error"], [o.summary for o in outcomes]
    assert "bad_data" in outcomes[2].summary
