"""Runbooks in the cockpit: guided lock-contention drill on the real sandbox, safety, resume, hung steps, snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from probes.config import PostgresTarget
from runbooks.journal import Journal
from runbooks.loader import find_runbook
from runbooks.runner import Outcome, StepOutcome
from tests.conftest import SandboxHandle
from tests.tui import fixtures
from tests.tui.conftest import incident_app, main_screen_settled
from tui.app import WarroomApp, make_app
from tui.incident import IncidentLog, RunbookRun
from tui.screens.confirm import ConfirmAction
from tui.screens.guided import GuidedScreen
from tui.screens.runbook import RunbookScreen
from widgets.checklist import STATUS_MARKS

SIZES = [(120, 40), (80, 24)]


async def until(pilot: Any, check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Let the app run until `check()` holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
    await pilot.pause()  # a screen that just arrived finishes mounting


def settled(run: RunbookRun, step_id: str) -> Callable[[], bool]:
    return lambda: run.states[step_id].status not in ("pending", "running")


def holder_pid(message: str) -> int:
    match = re.search(r"lock holder pid (\d+)", message)
    assert match, message
    return int(match.group(1))


def journal_events(app: WarroomApp) -> list[Any]:
    assert app.incident is not None and app.incident.incident_id is not None
    with Journal() as journal:
        return journal.events(app.incident.incident_id)


# --- the done-when, on the real sandbox -------------------------------------------------------


async def test_guided_lock_contention_terminates_the_blocker_after_confirmation(sandbox: SandboxHandle) -> None:
    message = sandbox.inject("lock-contention")
    try:
        pid = holder_pid(message)
        app = make_app(sandbox.env, runbook="lock-contention", guided=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, GuidedScreen), what="guided mode")
            screen = app.screen
            assert isinstance(screen, GuidedScreen)
            run = screen.run
            await until(pilot, settled(run, "primary-up"), what="primary-up")  # auto-run on entering
            assert run.states["primary-up"].status == "pass"
            await pilot.press("enter")
            await until(pilot, settled(run, "find-blocker"), what="find-blocker")
            assert run.states["find-blocker"].status == "fail"
            assert f"root blocker pid {pid}" in run.states["find-blocker"].summary
            await pilot.press("enter")
            await until(pilot, settled(run, "blocker-state"), what="blocker-state")
            assert "idle in transaction" in run.states["blocker-state"].summary
            await pilot.press("enter")  # on fail: goto resolution-path-b
            assert screen.current_step().id == "terminate-blocker"
            assert "Step 6/7" in str(screen.query_one("#step-head").render())
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the confirmation")
            dialog = app.screen
            assert isinstance(dialog, ConfirmAction)
            assert dialog.what.startswith(f"terminate backend pid {pid} on primary (127.0.0.1:")
            assert app.focused is not None and app.focused.id == "cancel"  # a stray Enter declines
            assert await sandbox.backend_alive(pid)  # nothing happens before the answer
            await pilot.press("tab", "enter")  # to "Run action", press it
            await until(pilot, settled(run, "terminate-blocker"), what="the action")
            assert run.states["terminate-blocker"].status == "pass", run.states["terminate-blocker"].summary
            assert not await sandbox.backend_alive(pid)
            await pilot.press("enter")
            assert screen.current_step().id == "verify"
            await until(pilot, settled(run, "verify"), what="verify")
            assert run.states["verify"].status == "pass", run.states["verify"].summary
            await pilot.press("left", "left", "left")  # back along the path to find-blocker
            assert screen.current_step().id == "find-blocker"
            await pilot.press("r")
            await until(pilot, lambda: run.states["find-blocker"].status == "pass", what="find-blocker to pass")
            events = journal_events(app)
    finally:
        sandbox.heal("lock-contention")
    mine = [(e.kind, e.step_id, e.status) for e in events]
    assert ("probe", "find-blocker", "fail") in mine
    assert ("action", "terminate-blocker", "pass") in mine
    assert mine.index(("action", "terminate-blocker", "pass")) < mine.index(("probe", "find-blocker", "pass"))
    assert all(e.ts > 0 for e in events)


async def test_declining_the_confirmation_leaves_the_backend_alive(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("lock-contention") as message:
        pid = holder_pid(message)
        app = make_app(sandbox.env, runbook="lock-contention")
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
            run = app.screen.run
            await pilot.press("R")  # run all automatic steps along the branches
            await until(pilot, lambda: settled(run, "verify")() and settled(run, "find-blocker")(), what="run all")
            assert run.states["find-blocker"].status == "fail"
            assert run.states["cancel-blocker"].status == "skipped"  # off the path (Path A)
            app.screen.checklist.select_step("terminate-blocker")
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the confirmation")
            await pilot.press("enter")  # focus is on Cancel
            await until(pilot, lambda: run.states["terminate-blocker"].status == "refused", what="the refusal")
            assert "declined" in run.states["terminate-blocker"].summary
            assert await sandbox.backend_alive(pid)
            events = journal_events(app)
    assert ("action-declined", "terminate-blocker") in [(e.kind, e.step_id) for e in events]


async def test_declining_an_action_asked_again_keeps_it_done(sandbox: SandboxHandle) -> None:
    # Seen in the walk: resume replay confirmed (done), `a` pressed again on the same step and
    # declined, and the step read "not done (declined by the operator)" though replay resumed.
    with sandbox.scenario("replication-lag"):
        app = make_app(sandbox.env, runbook="replication-lag")
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
            run = app.screen.run
            step = next(s for s in run.runbook.steps if s.is_action)
            app.screen.checklist.select_step(step.id)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the confirmation")
            await pilot.press("tab", "enter")  # Run action
            await until(pilot, lambda: run.states[step.id].status == "pass", what="the action")
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the second confirmation")
            await pilot.press("enter")  # Cancel
            await until(pilot, lambda: "(asked again, declined)" in run.states[step.id].summary, what="the decline")
            assert run.states[step.id].status == "pass"
            assert str(run.context.outcomes[step.id].status) == "pass"
            kinds = [e.kind for e in journal_events(app) if e.step_id == step.id]
    assert kinds == ["action", "action-declined"]


async def test_read_only_refuses_actions_without_a_dialog(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("lock-contention") as message:
        pid = holder_pid(message)
        app = make_app(sandbox.env, runbook="lock-contention", guided=True, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, GuidedScreen), what="guided mode")
            screen = app.screen
            run = screen.run
            await until(pilot, settled(run, "primary-up"), what="primary-up")
            await pilot.press("enter")
            await until(pilot, settled(run, "find-blocker"), what="find-blocker")
            await pilot.press("enter")
            await until(pilot, settled(run, "blocker-state"), what="blocker-state")
            await pilot.press("enter")
            assert screen.current_step().id == "terminate-blocker"
            assert "READ-ONLY" in str(screen.query_one("#rb-title").render())
            await pilot.press("a")
            await until(pilot, lambda: run.states["terminate-blocker"].status == "refused", what="the refusal")
            assert not isinstance(app.screen, ConfirmAction)
            assert "read-only" in run.states["terminate-blocker"].summary
            assert any("read-only: actions disabled" in str(n.message) for n in app._notifications)
            assert await sandbox.backend_alive(pid)


# --- without the sandbox -----------------------------------------------------------------------


async def test_marks_and_notes_are_journaled_and_resume_restores_them() -> None:
    app = incident_app(runbook="lock-contention")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
        app.screen.checklist.select_step("cancel-is-safe")
        await pilot.press("p")
        await pilot.press("n")
        await pilot.press(*"owner agreed", "enter")
        await pilot.pause()
        run = app.screen.run
        assert run.states["cancel-is-safe"].status == "pass"
        assert run.states["cancel-is-safe"].notes == ["owner agreed"]
        app.screen.checklist.select_step("find-blocker")
        await pilot.press("s")  # only manual steps are marked
        assert run.states["find-blocker"].status == "pending"
        incident = app.incident.incident_id
    resumed = incident_app(resume=True)
    async with resumed.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(resumed.screen, RunbookScreen), what="the resumed checklist")
        assert resumed.incident.incident_id == incident
        state = resumed.screen.run.states["cancel-is-safe"]
        assert (state.status, state.notes) == ("pass", ["owner agreed"])
        assert "✔ pass" in str(resumed.screen.checklist.get_row("cancel-is-safe")[0])


async def test_a_hung_target_shows_running_then_error_and_keys_still_work() -> None:
    # A real loopback server that accepts connections and never answers: a hung PostgreSQL.
    clients: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clients.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = fixtures.environment(postgres=(PostgresTarget("primary", f"postgresql://warroom@127.0.0.1:{port}/app"),), timeout_s=1.0)
    app = make_app(env, source=fixtures.incident_source(), clock=fixtures.clock, runbook="lock-contention")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
            run = app.screen.run
            app.screen.checklist.select_step("find-blocker")
            started = time.monotonic()
            await pilot.press("r")
            await until(pilot, lambda: run.states["find-blocker"].status == "running", what="running")
            await pilot.press("down")  # the UI keeps answering while the step hangs
            assert app.screen.checklist.selected_step_id == "blocker-state"
            await until(pilot, settled(run, "find-blocker"), timeout=10, what="the timeout")
            took = time.monotonic() - started
            assert run.states["find-blocker"].status == "error"
            assert "primary" in run.states["find-blocker"].summary
            assert took < 1.0 + 1.0 + 3.0, took  # its timeout plus the grace, not a freeze
    finally:
        for writer in clients:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_closed_checklist_never_leaves_a_reopened_step_running() -> None:
    # Nothing listens on the fixtures' ports: every read ends at once in "connection refused".
    app = incident_app(runbook="lock-contention")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
        await pilot.press("escape")
        app.open_runbook("lock-contention")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist again")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GuidedScreen), what="guided mode")
        run = app.screen.run
        await until(pilot, settled(run, "primary-up"), timeout=10, what="primary-up to end")
        assert run.states["primary-up"].status == "error"
        assert "connection refused" in run.states["primary-up"].summary
        await pilot.press("c")  # back to the checklist, on the same step
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist from guided mode")
        assert app.screen.checklist.selected_step_id == "primary-up"


async def test_a_target_without_action_credential_refuses_without_a_dialog() -> None:
    # Reads keep their dsn; nothing says how to act on the primary, so nothing is offered.
    bare = tuple(dataclasses.replace(t, action_dsn="") for t in fixtures.environment().postgres)
    app = make_app(fixtures.environment(postgres=bare), source=fixtures.incident_source(), clock=fixtures.clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await push(pilot, GuidedScreen(fixed_run(pilot.app), start="terminate-blocker", auto_run=False))
        screen = app.screen
        assert "set action_dsn or action_dsn_env" in screen.explanation(screen.current_step())
        await pilot.press("a")
        run = screen.run
        await until(pilot, lambda: run.states["terminate-blocker"].status == "refused", what="the refusal")
        assert not isinstance(app.screen, ConfirmAction)
        assert "primary: no action credential: set action_dsn or action_dsn_env" in run.states["terminate-blocker"].summary
        assert any("cannot run terminate-blocker: primary: no action credential" in str(n.message) for n in app._notifications)


def test_every_status_has_its_own_glyph() -> None:
    glyphs = [glyph for glyph, _ in STATUS_MARKS.values()]
    assert len(set(glyphs)) == len(glyphs) == 8


# --- snapshots, fed from fixed outcomes -----------------------------------------------------


async def push(pilot: Any, screen: Any) -> None:
    """Push a runbook screen once the fixed readings are in, and let it settle."""
    await until(pilot, lambda: bool(pilot.app.store.latest), what="the fixed readings")
    await main_screen_settled(pilot)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    await pilot.pause()


def fixed_run(app: WarroomApp) -> RunbookRun:
    """The lock-contention checklist as left after the diagnosis, with frozen times."""
    run = IncidentLog(app.env, use_journal=False).run_for(find_runbook("lock-contention"))
    now = fixtures.NOW
    run.apply(StepOutcome("primary-up", Outcome.PASS, "primary: 78/100 connections · 3 session(s) waiting on a lock",
                          duration_ms=12.4, timestamp=now - 30, kind="probe"))
    run.apply(StepOutcome("find-blocker", Outcome.FAIL, "primary: 3 blocked session(s), longest 42s · root blocker pid 4101 "
                          "(idle in transaction), 3 waiting (wanted value == 0)", data={"chains": [{"blocker_pid": 4101}]},
                          duration_ms=8.1, timestamp=now - 29, kind="probe"))
    run.apply(StepOutcome("blocker-state", Outcome.FAIL, "primary: 1 row(s) · pid 4101 is idle in transaction for 65s, app "
                          "billing (wanted row.state == 'active')", duration_ms=5.0, timestamp=now - 28, kind="sql"))
    for step_id in ("cancel-is-safe", "cancel-blocker"):
        run.states[step_id].status, run.states[step_id].summary = "skipped", "not on this path"
    run.states["blocker-state"].notes.append("billing batch job; owner paged")
    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_checklist_snapshot(snap_compare, size: tuple[int, int]) -> None:
    async def open_checklist(pilot: Any) -> None:
        await push(pilot, RunbookScreen(fixed_run(pilot.app)))
        await pilot.press("down", "down")
        await pilot.pause()

    assert snap_compare(incident_app(), terminal_size=size, run_before=open_checklist)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", ["find-blocker", "terminate-blocker"])
def test_guided_snapshot(snap_compare, step: str, size: tuple[int, int]) -> None:
    async def open_guided(pilot: Any) -> None:
        await push(pilot, GuidedScreen(fixed_run(pilot.app), start=step, auto_run=False))

    assert snap_compare(incident_app(), terminal_size=size, run_before=open_guided)


def test_confirmation_snapshot(snap_compare) -> None:
    async def open_dialog(pilot: Any) -> None:
        await push(pilot, GuidedScreen(fixed_run(pilot.app), start="terminate-blocker", auto_run=False))
        await pilot.press("a")
        await pilot.pause()

    assert snap_compare(incident_app(), terminal_size=(80, 24), run_before=open_dialog)
