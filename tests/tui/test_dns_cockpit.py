"""DNS and TCP in the cockpit (Pilot, the real sandbox): the Services pane's rows, and
`dns-failure` suggested, found by its runbook's checklist and healed."""

from __future__ import annotations

import re
import time

from tests.conftest import SandboxHandle
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tests.tui.test_runbook_scenarios import (
    flat,
    healed_through_checklist,
    open_first_suggestion,
    run_all_until,
    until,
)
from tui.app import make_app
from tui.screens.main import MainScreen
from widgets.runbook_sidebar import RunbookSidebar
from widgets.services import ServicesPane

RUNBOOK = "dns-resolution-failure"


async def test_dns_failure_in_the_services_pane_and_through_its_runbook(sandbox: SandboxHandle) -> None:
    dns_port = next(t for t in sandbox.env.tcp if t.name == "dns-tcp").port
    app = make_app(sandbox.env, refresh_s=1.0)
    async with app.run_test(size=(140, 40)) as pilot:
        await main_screen_settled(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        pane = main.query_one(ServicesPane)
        sidebar = main.query_one("#sidebar", RunbookSidebar)

        def row(pattern: str) -> bool:
            return re.search(pattern, screen_text(app)) is not None

        # Healthy: the question, NOERROR and its time; the port and its connect time.
        await until(pilot, lambda: row(r"● api-dns  A api\.sandbox\.test  NOERROR  [\d.]+ ms"), "the DNS row")
        assert row(rf"● dns-tcp  127\.0\.0\.1:{dns_port}  [\d.]+ ms"), screen_text(app)
        assert "dns" in pane.PROBES and "tcp" in pane.PROBES
        with sandbox.scenario("dns-failure"):
            await until(pilot, lambda: row(r"✖ api-dns  A api\.sandbox\.test  SERVFAIL"), "SERVFAIL in the Services pane")
            checklist = await open_first_suggestion(pilot, sidebar, RUNBOOK)
            run = checklist.run
            # After the SERVFAIL phase: answers arrive, late; the checklist's walk says by whom.
            await run_all_until(pilot, checklist, lambda: run.states["answers-fast"].status == "fail")
            state = run.states["answers-fast"]
            found = re.search(rf"answered in 1\.\d s by 127\.0\.0\.1:{dns_port}", state.summary)
            assert state.status == "fail" and found is not None, state.summary
            assert run.states["server-up"].status == run.states["name-resolves"].status == "pass"
            checklist.checklist.select_step("answers-fast")
            await pilot.pause()
            assert flat(found.group(0)) in flat(screen_text(app)), screen_text(app)
        await healed_through_checklist(pilot, checklist, main, sidebar, time.time())
        # The DNS server's slow phase may outlast the heal by a refresh or two on a busy machine.
        await until(pilot, lambda: row(r"● api-dns  A api\.sandbox\.test  NOERROR"), "NOERROR again", within=60.0)
