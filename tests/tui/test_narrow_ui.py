"""80x24 first (issue 9, item 9): the runbook hint, `r` full screen, the checklist's explanation,
guided marks, `c` back to the runbook, the runbook filter; suggestions off the event loop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from runbooks.loader import find_runbook
from tests.tui import fixtures
from tests.tui.conftest import incident_app, main_screen_settled
from tests.tui.test_runbook_ui import push, until
from tui.app import make_app
from tui.incident import IncidentLog
from tui.screens.guided import GuidedScreen
from tui.screens.main import MainScreen
from tui.screens.runbook import RunbookScreen
from tui.screens.runbook_list import RunbookListScreen
from widgets.env_header import EnvHeader
from widgets.pane import Pane
from widgets.runbook_sidebar import RunbookSidebar


def screen_lines(app: Any) -> list[str]:
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]


def flat(text: str) -> str:
    return " ".join(text.split())


def opening(markdown: str, words: int = 4) -> str:
    """The first words of a step's explanation as drawn (without Markdown's marks)."""
    return " ".join(markdown.replace("*", "").replace("`", "").split()[:words])


async def suggested(pilot: Any) -> RunbookSidebar:
    await main_screen_settled(pilot)
    sidebar = pilot.app.main_screen().query_one("#sidebar", RunbookSidebar)
    await until(pilot, lambda: bool(sidebar.suggested) and not sidebar.busy, what="the first suggestions")
    return sidebar


async def test_the_header_says_runbooks_are_suggested_while_the_sidebar_is_hidden() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        sidebar = await suggested(pilot)
        header = app.screen.query_one(EnvHeader)
        found = len(sidebar.suggested)
        await until(pilot, lambda: f"r ▶ {found} runbooks" in header.render_text(), what="the hint")
        assert f"r ▶ {found} runbooks" in screen_lines(app)[0]  # on screen, not cut off
        await pilot.press("b")  # the sidebar shown: it says so itself
        await until(pilot, lambda: "r ▶" not in header.render_text(), what="the hint to go")
    wide = incident_app()
    async with wide.run_test(size=(120, 40)) as pilot:
        await suggested(pilot)
        await pilot.pause(0.2)
        assert "r ▶" not in wide.screen.query_one(EnvHeader).render_text()


async def test_r_at_80_columns_lists_the_runbooks_full_screen_without_squeezing_the_panes() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        sidebar = await suggested(pilot)
        main = app.screen
        widths = [pane.region.width for pane in main.query(Pane)]
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RunbookListScreen), what="the runbook list")
        options = app.screen.query_one(OptionList)
        assert options.has_focus
        top = sidebar.first_suggestion
        assert options.get_option_at_index(0).id == top
        text = "\n".join(screen_lines(app))
        assert "▶ Lock contention" in text and "Service unavailable" in text
        assert "primary locks: value > 0" in text  # why it is suggested
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
        assert app.screen.run.runbook.id == top
        await pilot.press("escape")  # back to the panes: the list made way for the runbook
        await until(pilot, lambda: app.screen is main, what="the main screen")
        assert [pane.region.width for pane in main.query(Pane)] == widths
        assert not main.query_one("#sidebar").display


async def test_the_runbook_filter_shows_what_is_typed_esc_clears_it_and_q_then_quits() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await suggested(pilot)
        await pilot.press("r", "slash", *"lock")
        filter_input = app.screen.query_one(Input)
        assert filter_input.has_focus and filter_input.value == "lock"
        row = filter_input.region.y
        assert "lock" in screen_lines(app)[row], screen_lines(app)[row]  # the typed text is drawn
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1
        await pilot.press("escape")
        assert filter_input.value == "" and options.option_count == len(app.runbooks)
        assert options.has_focus  # out of the filter: keys are keys again
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0


async def test_leaving_the_sidebar_drops_its_filter() -> None:
    app = incident_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await suggested(pilot)
        await pilot.press("r", "slash", *"redis")
        sidebar = app.screen.query_one("#sidebar", RunbookSidebar)
        options = sidebar.query_one(OptionList)
        assert 0 < options.option_count < len(app.runbooks)
        app.screen.action_jump("services")
        await pilot.pause()
        await pilot.pause()
        assert sidebar.filter_text == "" and options.option_count == len(app.runbooks)


async def test_the_checklist_at_80x24_lists_every_step_wrapped_with_the_selected_step_explained() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen_settled(pilot)
        app.open_runbook("redis-memory-pressure")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
        screen = app.screen
        steps = screen.run.runbook.steps
        assert len(steps) == 14
        checklist = screen.checklist
        assert checklist.max_scroll_y == 0, "every step in view"
        text = flat("\n".join(screen_lines(app)))
        for step in steps:
            assert flat(step.title) in text, step.title  # whole titles, wrapped, not cut
        first_words = opening(steps[0].text)
        assert first_words in text
        await pilot.press("down", "down")
        await pilot.pause()
        text = flat("\n".join(screen_lines(app)))
        assert opening(steps[2].text) in text  # the selected step's explanation


async def test_guided_enter_on_an_unmarked_manual_step_asks_for_p_f_s_and_the_answer_moves_on() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        run = IncidentLog(app.env, use_journal=False).run_for(find_runbook("lock-contention"))
        await push(pilot, GuidedScreen(run, start="cancel-is-safe", auto_run=False))
        guided = app.screen
        assert isinstance(guided, GuidedScreen)
        await pilot.press("enter")
        assert guided.current_step().id == "cancel-is-safe"  # not moved on silently
        assert "p pass · f fail · s skip" in str(guided.query_one("#next").render())
        await pilot.press("p")
        await pilot.pause()
        assert run.states["cancel-is-safe"].status == "pass"
        assert guided.current_step().id == "cancel-blocker"  # its pass branch


async def test_guided_enter_still_follows_a_manual_hand_over_first() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        run = IncidentLog(app.env, use_journal=False).run_for(find_runbook("redis-memory-pressure"))
        await push(pilot, GuidedScreen(run, start="see-queue-runbook", auto_run=False))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GuidedScreen) and app.screen.run.runbook.id == "queue-backlog",
                    what="the hand-over")


async def test_c_goes_back_from_the_cockpit_to_the_runbook_left_on_its_step() -> None:
    app = incident_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await main_screen_settled(pilot)
        main = app.screen
        assert not main.check_action("resume_runbook", ())  # nothing to go back to: not in the key bar
        app.open_runbook("lock-contention")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist")
        app.screen.checklist.select_step("blocker-state")
        run = app.screen.run
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is main, what="the main screen")
        assert main.check_action("resume_runbook", ())
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist again")
        assert app.screen.run is run and app.screen.checklist.selected_step_id == "blocker-state"
        await pilot.press("g")  # left in guided mode: back in guided mode
        await until(pilot, lambda: isinstance(app.screen, GuidedScreen), what="guided mode")
        app.screen.path = ["verify"]
        app.pop_screen()
        await pilot.pause()
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is main, what="the main screen")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, RunbookScreen), what="the checklist left last")


# --- suggestions off the event loop ---------------------------------------------------------

# Each evaluation of this trigger stops at the conditions budget (20000 operations, ~17 ms of
# CPU) on every http reading: ten such runbooks cost ~0.5 s a pass, once on the event loop.
PATHOLOGICAL = "any(any(a == b + 'x' for a in summary + summary) for b in summary + summary)"


def pathological_runbooks(folder: Path, count: int = 10) -> None:
    for n in range(count):
        (folder / f"slow-{n}.md").write_text(
            f"---\nid: slow-{n}\ntitle: Slow trigger {n}\nseverity: low\ntriggers:\n"
            f'  - {{probe: http, when: "{PATHOLOGICAL}"}}\n---\n\n# Slow {n}\n\n1. **Look.**\n',
            encoding="utf-8")


async def test_bad_triggers_never_hold_up_a_key_press(tmp_path: Path) -> None:
    pathological_runbooks(tmp_path)
    app = make_app(fixtures.environment(), source=fixtures.incident_source(), clock=fixtures.clock, runbook_dirs=[tmp_path])
    async with app.run_test(size=(80, 24)) as pilot:
        main = app.main_screen()
        await until(pilot, lambda: bool(main.query("#sidebar")), what="the sidebar")
        sidebar = main.query_one("#sidebar", RunbookSidebar)
        # The bundled runbooks are still suggested: the slow ones only take their turn.
        await until(pilot, lambda: "lock-contention" in sidebar.suggested, what="lock-contention suggested")
        main = app.screen
        assert isinstance(main, MainScreen)
        slowest = 0.0
        for key, pane in [("2", "connections"), ("3", "locks"), ("4", "replication"), ("1", "services")] * 3:
            sidebar.suggest(list(app.store.latest.values()))  # a pass over every trigger, now
            started = time.monotonic()
            await pilot.press(key)
            assert main.focused is not None and main.focused.id == pane
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 1.0, slowest  # generous here; tests/perf measures the figure
        assert not any(rid.startswith("slow-") for rid in sidebar.suggested)


@pytest.mark.parametrize("size", [(80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_runbook_list_snapshot(snap_compare, size: tuple[int, int]) -> None:
    async def open_list(pilot: Any) -> None:
        await suggested(pilot)
        await pilot.press("r")
        await pilot.pause()

    assert snap_compare(incident_app(), terminal_size=size, run_before=open_list)
