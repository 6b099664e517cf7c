"""The runbook list full screen: what `r` and `/` open on a terminal too narrow for the sidebar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Label, OptionList

from widgets.key_bar import KeyBar
from widgets.runbook_sidebar import RunbookSidebar

if TYPE_CHECKING:
    from tui.app import WarroomApp


class RunbookListScreen(Screen[None]):
    """Every runbook, suggested first with the reading that matched; Enter opens one in place
    of this list (Esc from its checklist comes back to the panes), Esc goes back."""

    app: WarroomApp  # type: ignore[assignment]

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "back", "Back", id="runbooks.back"),
        Binding("slash", "filter", "Filter", id="runbooks.list_filter"),
    ]

    DEFAULT_CSS = """
    RunbookListScreen #rb-list-title { dock: top; height: 1; width: 1fr; background: $panel; text-style: bold; padding: 0 1; }
    RunbookListScreen RunbookSidebar { width: 1fr; height: 1fr; }
    """

    def __init__(self, main_sidebar: Any, *, filter_first: bool = False) -> None:
        super().__init__()
        self.main_sidebar = main_sidebar  # the main screen's RunbookSidebar: its suggestions
        self.filter_first = filter_first

    def compose(self) -> ComposeResult:
        yield Label("Runbooks · Enter opens · / filter · Esc back to the panes", id="rb-list-title", markup=False)
        self.sidebar = RunbookSidebar(self.app.runbooks, id="runbook-list", reasons=True)
        self.sidebar.suggested = dict(self.main_sidebar.suggested)
        yield self.sidebar
        yield KeyBar()

    def on_mount(self) -> None:
        found = len(self.sidebar.suggested)
        self.sidebar.border_subtitle = f"{found} suggested" if found else ""
        # Titles are cut to the room they have: rebuilt once the list knows its full width.
        self.call_after_refresh(self.sidebar._rebuild)
        if self.filter_first:
            self.sidebar.action_filter()
        else:
            self.sidebar.query_one(OptionList).focus()

    def action_filter(self) -> None:
        self.sidebar.action_filter()

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_runbook_sidebar_opened(self, message: RunbookSidebar.Opened) -> None:
        # The runbook replaces this list: Esc from it returns to the panes.
        message.stop()
        self.app.pop_screen()
        self.app.open_runbook(message.runbook_id)
