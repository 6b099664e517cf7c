"""Closing the cockpit's incident: its number and title, and a one-line resolution to type."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class CloseIncident(ModalScreen[str | None]):
    """Dismissed with the resolution (Enter), or None (Esc). An empty line is not a resolution."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "cancel", "Cancel", id="incident.cancel")]
    DEFAULT_CSS = """
    CloseIncident { align: center middle; }
    CloseIncident > Vertical { width: 80%; max-width: 100; height: auto; border: thick $accent; padding: 1 2; background: $panel; }
    CloseIncident #close-title { text-style: bold; }
    CloseIncident #close-hint { color: $text-muted; margin-top: 1; }
    CloseIncident #close-problem { color: $error; }
    """

    def __init__(self, incident_id: int, title: str) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.incident_title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Close incident #{self.incident_id}: {self.incident_title}", id="close-title")
            yield Label("Resolution, one line (what fixed it, or why it needed no fix):")
            yield Input(placeholder="e.g. terminated the idle billing session; pool back to 12/40", id="resolution")
            yield Label("", id="close-problem")
            yield Label("Enter: close the incident · Esc: keep it open", id="close-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = " ".join(event.value.split())
        if not text:
            self.query_one("#close-problem", Label).update("type a resolution first (Esc keeps the incident open)")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
