"""Each bundled runbook with a matching sandbox fault, run from the cockpit (Pilot).

The headless runs of the same runbooks are in tests/runbooks/test_bundled.py and
test_scenario_walks.py; this is the operator's path. For every scenario: the cockpit suggests
the most specific runbook first, `r` Enter opens it, `g` and Enter walk it in guided mode to
the step that names the culprit, and after healing it is no longer suggested and that step
passes. Then `R` in the checklist runs every automatic step along the branches; hand-overs
(`goto runbook:ID`) and steps that do not apply (no Docker engine) are walked too. Lock
contention's action is in test_runbook_ui.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SandboxHandle
from tests.runbooks.test_scenario_walks import WALKS, Walk, skip_without_docker
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tui.app import make_app
from tui.screens.guided import GuidedScreen
from tui.screens.main import MainScreen
from tui.screens.runbook import RunbookScreen
from widgets.runbook_sidebar import RunbookSidebar

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


def problems_since(run: Any, since: float) -> tuple[list[str], list[str]]:
    """(steps run since `since`, those of them that did not pass). Without a Docker engine
    the Docker steps show skipped, saying they do not apply: not a problem."""
    fresh = [sid for sid, state in run.states.items() if state.ts is not None and state.ts >= since and state.kind != "manual"]
    return fresh, [sid for sid in fresh if run.states[sid].status in ("fail", "error")]


async def open_first_suggestion(pilot: Any, sidebar: Any, runbook: str) -> RunbookScreen:
    """Wait until `runbook` is suggested first, then open it as the operator does: `r` focuses
    the list (its top is the suggestion), Enter opens the checklist."""
    await until(pilot, lambda: sidebar.first_suggestion == runbook,
                f"{runbook} suggested first (suggested: {list(sidebar.suggested)})")
    await pilot.press("r", "enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, RunbookScreen), "the checklist opens")
    checklist = pilot.app.screen
    assert isinstance(checklist, RunbookScreen) and checklist.run.runbook.id == runbook
    return checklist


async def healed_through_checklist(pilot: Any, checklist: RunbookScreen, main: Any, sidebar: Any, since: float) -> None:
    """After a heal at `since`: run-all until every step run since passes, `verify` among them;
    back on the main screen, the runbook is no longer suggested."""
    run, runbook = checklist.run, checklist.run.runbook.id

    def healed() -> bool:
        fresh, bad = problems_since(run, since)
        return "verify" in fresh and not bad

    await run_all_until(pilot, checklist, healed)
    fresh, bad = problems_since(run, since)
    assert "verify" in fresh and not bad, {sid: (run.states[sid].status, run.states[sid].summary) for sid in bad}
    await pilot.press("escape")
    await until(pilot, lambda: pilot.app.screen is main, "back on the main screen")
    await until(pilot, lambda: runbook not in sidebar.suggested, f"{runbook} no longer suggested")


async def until(pilot: Any, done: Callable[[], bool], what: str, within: float = WAIT_S) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g}s: {what}")
        await pilot.pause(0.1)


def flat(text: str) -> str:
    """Text without whitespace: a result line wrapped on screen still matches."""
    return re.sub(r"\s+", "", text)


async def settled(pilot: Any, screen: Any, step_id: str) -> Any:
    """The step's state once its read (started on entering it) has finished."""
    state = screen.run.states[step_id]
    step = screen.run.runbook.step(step_id)
    if step is not None and step.automatic:
        await until(pilot, lambda: state.status not in ("pending", "running"), f"{step_id} finished")
    return state


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
            fresh, bad = problems_since(run, healed_at)
            return bool(fresh) and not bad

        await run_all_until(pilot, screen, healed)
        fresh, bad = problems_since(run, healed_at)
        assert fresh and not bad, {sid: (run.states[sid].status, run.states[sid].summary) for sid in bad}
        assert run.states[step].status == "pass" or step not in fresh


async def walk_to(pilot: Any, guided: GuidedScreen, step_id: str) -> None:
    """Enter along the branches (a manual step marked passed, as an operator completing it
    would) until guided mode shows `step_id`; bounded by the runbook's length."""
    for _ in range(len(guided.run.runbook.steps)):
        step = guided.current_step()
        assert step is not None
        if step.id == step_id:
            return
        state = await settled(pilot, guided, step.id)
        if step.kind == "manual" and state.status in ("pending", "manual"):
            await pilot.press("p")
        await pilot.press("enter")
        await pilot.pause()
    raise AssertionError(f"guided mode never reached {step_id}: path {guided.path}")


@pytest.mark.parametrize("walk", WALKS, ids=[w.scenario for w in WALKS])
async def test_the_cockpit_suggests_the_most_specific_runbook_and_guided_mode_reaches_the_culprit(
    sandbox: SandboxHandle, walk: Walk
) -> None:
    skip_without_docker(sandbox, walk)
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        sidebar = main.query_one("#sidebar", RunbookSidebar)
        with sandbox.scenario(walk.scenario):
            await open_first_suggestion(pilot, sidebar, walk.runbook)
            await pilot.press("g")
            await until(pilot, lambda: isinstance(app.screen, GuidedScreen), "guided mode opens")
            guided = app.screen
            assert isinstance(guided, GuidedScreen)
            await walk_to(pilot, guided, walk.culprit_step)
            # The step found the problem (✘ or ‼) and names the culprit; its read may need the
            # fault to develop (a consumer counts as dead after 10 s idle): `r` again.
            def found(state: Any) -> bool:
                return state.status in ("fail", "error") and re.search(walk.culprit, state.summary) is not None

            deadline = time.monotonic() + WAIT_S
            while not found(state := await settled(pilot, guided, walk.culprit_step)):
                assert time.monotonic() < deadline, f"{walk.culprit_step}: {state.status}: {state.summary}"
                await pilot.pause(1.0)
                await pilot.press("r")
                await pilot.pause(0.2)
            shown = re.search(walk.culprit, state.summary)
            assert shown is not None and flat(shown.group(0)) in flat(screen_text(app)), screen_text(app)
            # The live line shows the step's own target.
            step = guided.current_step()
            assert step is not None and step.target
            live = str(guided.query_one("#live").render())
            assert live.startswith(f"live {step.target} "), live
        # Healed: walked again (`c` checklist, `R` along the branches) every check passes, and
        # back on the main screen the runbook is no longer suggested.
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the checklist")
        checklist = app.screen
        assert isinstance(checklist, RunbookScreen)
        healed_at = time.time()

        def healed() -> bool:
            fresh, bad = problems_since(checklist.run, healed_at)
            return bool(fresh) and not bad

        await run_all_until(pilot, checklist, healed)
        fresh, bad = problems_since(checklist.run, healed_at)
        assert fresh and not bad, {sid: (checklist.run.states[sid].status, checklist.run.states[sid].summary) for sid in bad}
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is main, "back on the main screen")
        await until(pilot, lambda: walk.runbook not in sidebar.suggested, f"{walk.runbook} no longer suggested")


async def test_enter_follows_a_hand_over_to_the_runbook_it_names_and_the_journal_records_it(sandbox: SandboxHandle) -> None:
    """Connection exhaustion seen from the triage runbook: its walk ends in "Follow the
    connection pool exhausted runbook", and Enter opens that runbook, in guided mode."""
    app = make_app(sandbox.env, refresh_s=1.0, runbook="database-connection-failures", guided=True)
    async with app.run_test(size=(120, 40)) as pilot:
        with sandbox.scenario("connection-exhaustion"):
            await until(pilot, lambda: isinstance(app.screen, GuidedScreen), "guided mode opens")
            guided = app.screen
            assert isinstance(guided, GuidedScreen)
            await walk_to(pilot, guided, "slots-free")
            state = await settled(pilot, guided, "slots-free")
            assert state.status == "fail" and re.search(r"3\d of 40 slots in use", state.summary), state.summary
            await pilot.press("enter")
            await pilot.pause()
            assert guided.current_step().id == "see-pool-runbook"  # type: ignore[union-attr]
            assert "Enter → runbook: Connection pool exhausted" in screen_text(app)
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is not guided, "the hand-over opens the next runbook")
            handed = app.screen
            assert isinstance(handed, GuidedScreen) and handed.run.runbook.id == "connection-pool-exhausted"
            incident = app.incident  # type: ignore[attr-defined]
            events = incident.journal.events(incident.incident_id)
            record = [e for e in events if e.kind == "run" and e.status == "handed over"]
            assert len(record) == 1 and record[0].step_id == "see-pool-runbook", [e.to_json() for e in events]
            assert record[0].summary == "database-connection-failures step see-pool-runbook hands over to runbook connection-pool-exhausted"
            # Esc comes back to the runbook that handed over; its step says where it led.
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is guided, "back in the triage runbook")
            assert guided.run.states["see-pool-runbook"].summary == "handed over to runbook connection-pool-exhausted"
            # In the checklist, `R` stops at the hand-over with the cursor on it, and Enter follows it.
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, RunbookScreen), "the checklist")
            checklist = app.screen
            assert isinstance(checklist, RunbookScreen)
            await run_all_until(pilot, checklist, lambda: checklist.run.states["slots-free"].status == "fail")
            assert checklist.checklist.selected_step_id == "see-pool-runbook"
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunbookScreen) and app.screen is not checklist, "Enter follows it")
            assert app.screen.run.runbook.id == "connection-pool-exhausted"  # type: ignore[attr-defined]


async def test_without_docker_the_docker_steps_say_why_and_guided_mode_walks_on(sandbox: SandboxHandle) -> None:
    if sandbox.env.docker is not None:
        pytest.skip("a Docker engine runs: the Docker steps apply")
    app = make_app(sandbox.env, refresh_s=1.0, runbook="service-unavailable", guided=True)
    async with app.run_test(size=(120, 40)) as pilot:
        with sandbox.scenario("service-down"):
            await until(pilot, lambda: isinstance(app.screen, GuidedScreen), "guided mode opens")
            guided = app.screen
            assert isinstance(guided, GuidedScreen)
            await walk_to(pilot, guided, "payments-accepts")
            deadline = time.monotonic() + WAIT_S
            while (await settled(pilot, guided, "payments-accepts")).status != "error":
                assert time.monotonic() < deadline
                await pilot.press("r")
                await pilot.pause(0.5)
            why = f"does not apply here: no Docker engine 'docker' in environment '{sandbox.env.name}'"
            for step_id in ("containers", "restart-failed"):
                await pilot.press("enter")
                await pilot.pause()
                assert guided.current_step().id == step_id  # type: ignore[union-attr]
                state = await settled(pilot, guided, step_id)
                assert state.status == "skipped" and state.summary.startswith(why), state.summary
                text = screen_text(app)
                assert "max()" not in text and "no such target" not in text, text
                assert "live docker: not configured here" in text, text
            await pilot.press("enter")
            await pilot.pause()
            assert guided.current_step().id == "host-process"  # type: ignore[union-attr]
