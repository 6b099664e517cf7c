"""The new HTTP scenarios in the cockpit (Pilot, the real sandbox): each fault shows on its
Services row with what is wrong, its runbook is suggested first, `r` Enter opens it, run-all
finds the fault at the right step, and after healing the walk passes and nothing is suggested."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from tests.conftest import SandboxHandle
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tests.tui.test_runbook_scenarios import (
    healed_through_checklist,
    open_first_suggestion,
    run_all_until,
    until,
)
from tui.app import make_app
from tui.screens.main import MainScreen
from widgets.runbook_sidebar import RunbookSidebar


@dataclass(frozen=True)
class Fault:
    scenario: str
    runbook: str
    row: str  # the Services row while injected (regex over the screen)
    step: str  # the step that finds it
    found: str  # regex over that step's line


FAULTS = [
    Fault("cors-broken", "cors-browser-calls-failing", r"✖ api-cors .*", "preflight-origin", r"Access-Control-Allow-Origin"),
    Fault("error-rate", "high-error-rate", r"✖ api-metrics .*", "error-share", r"api-metrics: "),
    Fault("auth-failure", "authentication-failures", r"✖ api-account .*", "not-401", r"401 Unauthorized"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.scenario for f in FAULTS])
async def test_an_http_fault_is_suggested_found_and_healed_in_the_cockpit(sandbox: SandboxHandle, fault: Fault) -> None:
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(140, 45)) as pilot:
        await main_screen_settled(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        sidebar = main.query_one("#sidebar", RunbookSidebar)
        with sandbox.scenario(fault.scenario):
            await until(pilot, lambda: re.search(fault.row, screen_text(app)) is not None, f"{fault.scenario} on its row")
            checklist = await open_first_suggestion(pilot, sidebar, fault.runbook)
            run = checklist.run
            await run_all_until(pilot, checklist, lambda: run.states[fault.step].status == "fail")
            state = run.states[fault.step]
            assert state.status == "fail" and re.search(fault.found, state.summary), state.summary
        await healed_through_checklist(pilot, checklist, main, sidebar, time.time())
