"""Each bundled runbook with a matching sandbox fault, run from the cockpit's checklist (Pilot).

The headless runs of the same runbooks are in tests/runbooks/test_bundled.py; this is the
operator's path: open the runbook in the cockpit, `R` runs every automatic step along the
branches, the step that finds the fault fails on screen with its detail, and after healing
the same keys show it pass. Lock contention (guided, with its action) is in test_runbook_ui.py
and the container crash loop, which needs Docker, in test_bundled.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SandboxHandle
from tests.tui.test_cockpit import screen_text
from tui.app import make_app
from tui.screens.runbook import RunbookScreen

WAIT_S = 30.0  # a fault shows (and heals) within seconds; bounded either way

# scenario, runbook, the step that finds it, a fragment of that step's detail, its status
CASES = [
    ("connection-exhaustion", "connection-pool-exhausted", "slots-in-use", "of 40 slots in use", "fail"),
    ("idle-in-transaction", "idle-in-transaction", "find-idle", "sandbox-report-export", "fail"),
    ("replication-lag", "replication-lag", "replay-paused", "replay is paused", "fail"),
    ("queue-backlog", "queue-backlog", "queue-depth", "celery depth", "fail"),
    ("latency-spike", "slow-queries-high-latency", "api-latency", "api: slow:", "fail"),
    ("error-spike", "service-unavailable", "api-no-5xx", "HTTP 503", "fail"),
    ("service-down", "service-unavailable", "payments-accepts", "connection refused", "error"),
    ("dependency-outage", "external-dependency-outage", "provider-status", "indicator major", "fail"),
    ("redis-memory", "redis-memory-pressure", "memory-usage", "policy noeviction", "fail"),
]


async def run_all_until(pilot: Any, screen: RunbookScreen, done: Callable[[], bool]) -> None:
    """Press `R` until `done()` (the fault, or its healing, may take seconds to show)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        await pilot.press("R")
        started = time.monotonic()
        await pilot.pause(0.2)
        # The run-all worker visits the steps in order; wait for it to finish.
        while any(w.group == "runbook-run-all" and w.is_running for w in screen.workers):
            if time.monotonic() - started > WAIT_S:
                raise AssertionError("run all did not finish")
            await pilot.pause(0.1)
        if done() or time.monotonic() > deadline:
            return
        await pilot.pause(1.0)


def problems_since(run: Any, since: float, *, docker: bool = True) -> tuple[list[str], list[str]]:
    """(steps run since `since`, those of them that did not pass). Without a Docker engine
    the sandbox has no `docker` target, and a step probing it is an error that says so."""
    fresh = [sid for sid, state in run.states.items() if state.ts is not None and state.ts >= since and state.kind != "manual"]

    def expected(sid: str) -> bool:
        state = run.states[sid]
        return not docker and state.status == "error" and state.summary.startswith("docker: no such target")

    return fresh, [sid for sid in fresh if run.states[sid].status in ("fail", "error") and not expected(sid)]


@pytest.mark.parametrize(("scenario", "runbook", "step", "detail", "status"), CASES, ids=[c[0] for c in CASES])
async def test_runbook_finds_the_fault_in_the_cockpit(
    sandbox: SandboxHandle, scenario: str, runbook: str, step: str, detail: str, status: str
) -> None:
    app = make_app(sandbox.env, refresh_s=1.0, runbook=runbook)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 10
        while not isinstance(app.screen, RunbookScreen) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        screen = app.screen
        assert isinstance(screen, RunbookScreen), screen
        run = screen.run
        with sandbox.scenario(scenario):
            await run_all_until(pilot, screen, lambda: run.states[step].status == status)
            found, summary = run.states[step].status, run.states[step].summary
            assert found == status, f"{step}: {found}: {summary}"
            assert detail in summary, summary
            # What the operator sees: the selected step's detail, on screen.
            screen.checklist.select_step(step)
            await pilot.pause()
            assert detail in screen_text(app), screen_text(app)
        # Healed: a new run passes every check along its path (which may no longer go
        # through the step that found the fault: its branch sends the operator elsewhere).
        healed_at = time.time()

        def healed() -> bool:
            fresh, bad = problems_since(run, healed_at, docker=bool(sandbox.env.docker))
            return bool(fresh) and not bad

        await run_all_until(pilot, screen, healed)
        fresh, bad = problems_since(run, healed_at, docker=bool(sandbox.env.docker))
        assert fresh and not bad, {sid: (run.states[sid].status, run.states[sid].summary) for sid in bad}
        assert run.states[step].status == "pass" or step not in fresh
