"""The `?` help screen: every key of the screen underneath, generated from its bindings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

KeyRow = tuple[str, str, str]  # (key as shown, what it does, binding id)


class HelpScreen(Screen[None]):
    """The list of keys; Escape, `?` or `q` closes it.

    A whole screen, not a modal over the cockpit: drawing the cockpit dimmed behind it cost
    more than the rest of the screen, and `?` must answer at once even over a slow link."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 72; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, rows: Iterable[KeyRow]) -> None:
        super().__init__()
        self.rows = list(rows)

    def compose(self) -> ComposeResult:
        # Plain aligned text (a Rich table re-measures every cell at each render).
        key_width = max((len(key) for key, _, _ in self.rows), default=0)
        what_width = max((len(what) for _, what, _ in self.rows), default=0)
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, description, binding_id in self.rows:
            text.append(key.ljust(key_width + 2), style="bold")
            text.append(description.ljust(what_width + 2))
            text.append(binding_id + "\n", style="dim")
        text.rstrip()
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys (Escape closes)"
            yield Static(text)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
