"""The runbook checklist: one row per step with its status mark, kind, result and duration."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

# status -> (glyph, style): the glyph and the word both say it, so NO_COLOR still reads.
STATUS_MARKS: dict[str, tuple[str, str]] = {
    "pending": ("○", "dim"),
    "running": ("◌", "bold cyan"),
    "pass": ("✔", "bold green"),
    "fail": ("✘", "bold red"),
    "error": ("‼", "bold magenta"),
    "manual": ("?", "bold yellow"),
    "skipped": ("–", "dim"),
    "refused": ("⊘", "bold yellow"),
}
KIND_STYLES = {"manual": "italic", "action": "bold reverse yellow"}
FIXED = {"status": 9, "n": 2, "kind": 6, "took": 6}
# Narrower than this, the list keeps the status glyph, number, kind and the whole title
# (wrapped): the selected step's word, result and time are in the detail below it.
COMPACT_BELOW = 100
COMPACT = {"status": 1, "n": 2, "kind": 6}


def status_text(status: str) -> Text:
    """`✘ fail` in its colour; an unknown status still shows its word."""
    glyph, style = STATUS_MARKS.get(status, ("·", ""))
    return Text(f"{glyph} {status}", style=style, no_wrap=True)


def status_glyph(status: str) -> Text:
    """The status's glyph alone (the compact list; each status has its own glyph)."""
    glyph, style = STATUS_MARKS.get(status, ("·", ""))
    return Text(glyph, style=style, no_wrap=True)


def kind_text(kind: str) -> Text:
    # Actions change things: upper case and reversed so they stand out even without colour.
    return Text(kind.upper() if kind == "action" else kind, style=KIND_STYLES.get(kind, ""), no_wrap=True)


def format_duration(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def format_time(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else ""


class Checklist(DataTable[Any]):
    """Rows of steps; the owner calls `show(steps, states)` then `update_step` as outcomes
    arrive. Enter on a row posts `Checklist.StepChosen`."""

    DEFAULT_CSS = """
    Checklist { height: 1fr; border: round $secondary; }
    Checklist:focus { border: round $accent; }
    """

    BINDINGS: ClassVar[list[Any]] = []

    class StepChosen(Message):
        """The operator pressed Enter on a step."""

        def __init__(self, step_id: str) -> None:
            super().__init__()
            self.step_id = step_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._steps: list[Any] = []
        self._states: dict[str, Any] = {}
        self._widths: tuple[int, int] = (0, 0)  # title, result (0: no result column)

    def on_mount(self) -> None:
        self.border_title = "Steps"

    def _flexible(self) -> tuple[int, int]:
        """Widths of the title and result columns for the current size (result 0: compact)."""
        width = max(40, self.size.width or self.app.size.width - 2)
        if width < COMPACT_BELOW:
            # Four columns with a cell of padding either side; one cell for a scrollbar.
            return max(20, width - sum(COMPACT.values()) - 2 * (len(COMPACT) + 1) - 1), 0
        # Each of the six columns has one cell of padding on either side; keep one for a scrollbar.
        free = max(24, width - sum(FIXED.values()) - 2 * (len(FIXED) + 2) - 1)
        title = max(12, min(44, free * 9 // 20))
        return title, max(10, free - title)

    @property
    def compact(self) -> bool:
        return self._widths[1] == 0

    def show(self, steps: list[Any], states: dict[str, Any]) -> None:
        """(Re)build every row: steps are runbooks.model.Step, states tui.incident.StepState."""
        row = self.cursor_row if self.row_count else 0
        self._steps, self._states = list(steps), states
        self._widths = self._flexible()
        title_w, result_w = self._widths
        self.clear(columns=True)
        if self.compact:
            self.add_column("", width=COMPACT["status"], key="status")
            self.add_column("#", width=COMPACT["n"], key="n")
            self.add_column("kind", width=COMPACT["kind"], key="kind")
            self.add_column("step", width=title_w, key="title")
        else:
            self.add_column("status", width=FIXED["status"], key="status")
            self.add_column("#", width=FIXED["n"], key="n")
            self.add_column("kind", width=FIXED["kind"], key="kind")
            self.add_column("step", width=title_w, key="title")
            self.add_column("result", width=result_w, key="result")
            self.add_column("took", width=FIXED["took"], key="took")
        for step in self._steps:
            # Auto height: a title longer than its column wraps instead of being cut.
            self.add_row(*self._cells(step), key=step.id, height=None)
        if self._steps:
            self.move_cursor(row=min(row, len(self._steps) - 1))

    def _cells(self, step: Any) -> list[Any]:
        state = self._states.get(step.id)
        status = state.status if state else "pending"
        summary = state.summary if state else ""
        if state and state.notes:
            summary = f"{summary} [{len(state.notes)} note{'s' if len(state.notes) > 1 else ''}]".strip()
        cells = [
            status_glyph(status) if self.compact else status_text(status),
            Text(f"{step.index + 1}", justify="right"),
            kind_text(step.kind),
            Text(step.title),
        ]
        if self.compact:
            return cells
        return [
            *cells,
            Text(" ".join(summary.split()), no_wrap=True, overflow="ellipsis", style="dim" if status == "pending" else ""),
            Text(format_duration(state.duration_ms if state else None), justify="right"),
        ]

    def update_step(self, step_id: str) -> None:
        step = next((s for s in self._steps if s.id == step_id), None)
        if step is None or step_id not in self.rows:
            return
        for key, cell in zip(("status", "n", "kind", "title", "result", "took"), self._cells(step), strict=False):
            self.update_cell(step_id, key, cell)

    def on_resize(self) -> None:
        if self._steps and self._flexible() != self._widths:
            self.show(self._steps, self._states)

    @property
    def selected_step_id(self) -> str | None:
        if not self._steps or self.cursor_row < 0 or self.cursor_row >= len(self._steps):
            return None
        return self._steps[self.cursor_row].id

    def select_step(self, step_id: str) -> None:
        index = next((i for i, s in enumerate(self._steps) if s.id == step_id), None)
        if index is not None:
            self.move_cursor(row=index)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(self.StepChosen(str(event.row_key.value)))
