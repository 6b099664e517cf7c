"""Placeholder runbook screen: the seam where the runbook checklist will plug in."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from widgets.runbook_sidebar import RunbookEntry, read_front_matter


class RunbookScreen(Screen[None]):
    """Shows a runbook's title and text. The runbook checklist screen replaces this one:
    `WarroomApp.open_runbook(runbook_id, guided)` is the only caller."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "app.pop_screen", "Back", id="runbook.back"),
    ]

    DEFAULT_CSS = """
    RunbookScreen > #runbook-title { dock: top; height: 1; width: 1fr; background: $panel; text-style: bold; padding: 0 1; }
    RunbookScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, entry: RunbookEntry, *, guided: bool = False) -> None:
        super().__init__()
        self.entry = entry
        self.guided = guided

    def compose(self) -> ComposeResult:
        mode = "guided" if self.guided else "checklist"
        meta = read_front_matter(self.entry.path)
        yield Label(f"Runbook: {self.entry.title} ({mode})   (Esc: back)", id="runbook-title")
        with VerticalScroll(can_focus=True):
            yield Static(f"id: {self.entry.id}   severity: {meta.get('severity', '-')}   file: {self.entry.path}", markup=False)
            yield Static(self._body(), markup=False)
        yield Footer()

    def _body(self) -> str:
        try:
            text = self.entry.path.read_text(encoding="utf-8")
        except OSError as exc:
            return f"cannot read {self.entry.path}: {exc.strerror}"
        # Skip the front matter; show the steps as written until the checklist view exists.
        if text.startswith("---"):
            end = text.find("\n---", 3)
            text = text[end + 4 :] if end != -1 else text
        return text.strip()
