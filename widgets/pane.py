"""The base of every cockpit pane: title, one-glance state colour, rows that update in place."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from probes.thresholds import Thresholds
from widgets.store import Reading, ResultStore

STATES = ("ok", "warn", "fail", "error", "stale")
# Rich styles for the dot in front of a row; NO_COLOR strips them, the words stay.
DOT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "error": "bold magenta", "stale": "dim"}
DOT = {"ok": "●", "warn": "▲", "fail": "✖", "error": "✖", "stale": "○"}


def dot(state: str) -> Text:
    """A state mark that differs in shape too, so it reads without colour."""
    return Text(DOT.get(state, "●") + " ", style=DOT_STYLE.get(state, ""))


def headline(reading: Reading, name: str | None = None) -> Text:
    """State mark, bold name and, when the data is old, `timeout 12s` right after the name."""
    line = dot(reading.state) + Text(name or reading.result.target, style="bold")
    if reading.stale:
        line.append(f" {reading.staleness}", style="italic")
    return line


def safe_id(*parts: str) -> str:
    """A DOM id from arbitrary target/queue names."""
    raw = "-".join(parts)
    return "r-" + "".join(c if c.isalnum() else "_" for c in raw)


class Pane(VerticalScroll, can_focus=True):
    """One live pane. Subclasses set TITLE/PROBES and implement `show()`.

    The screen bumps `version` when readings of this pane's probes arrive; the pane then
    redraws from the shared store, touching only rows whose text or data changed.
    """

    TITLE: ClassVar[str] = ""
    PROBES: ClassVar[tuple[str, ...]] = ()
    DETAIL: ClassVar[str] = ""  # the drill-down screen's name in the app

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("enter", "drill_down", "Details", id="pane.details"),
    ]

    DEFAULT_CSS = """
    Pane {
        border: round $secondary;
        border-title-style: bold;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        padding: 0 1;
        scrollbar-size-vertical: 1;
        height: 1fr;
    }
    Pane:focus { border: double $accent; }
    Pane.-ok { border: round $success; }
    Pane.-warn { border: round $warning; }
    Pane.-fail { border: heavy $error; }
    Pane.-error { border: heavy $error; }
    Pane.-stale { border: dashed grey; }
    Pane.-ok:focus, Pane.-warn:focus, Pane.-fail:focus, Pane.-error:focus, Pane.-stale:focus {
        border: double $accent;
    }
    Pane .empty { color: $text-muted; }
    """

    # repaint=False: a new version redraws only the rows that changed, not the whole pane.
    state: reactive[str] = reactive("ok", init=False, repaint=False)
    version: reactive[int] = reactive(0, init=False, always_update=True, repaint=False)

    class DrillDown(Message):
        """The operator asked for this pane's details."""

        def __init__(self, pane: Pane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, store: ResultStore, *, thresholds: Thresholds | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.thresholds = thresholds or Thresholds()
        self._summary = ""

    def on_mount(self) -> None:
        self.border_title = self.TITLE
        self.set_class(True, "-ok")
        self.show()

    def watch_version(self) -> None:
        self.show()

    def watch_state(self, old: str, new: str) -> None:
        self.set_class(False, f"-{old}")
        self.set_class(True, f"-{new}")
        self._set_titles()

    def set_summary(self, state: str, summary: str, readings: Sequence[Reading] = ()) -> None:
        """The pane's one-glance state: border colour, title word, one-line subtitle.

        A stale target leads the subtitle (`primary timeout 12s`): old data must not pass
        for current data even when its row is scrolled out of view."""
        stale = [r for r in readings if r.stale]
        if stale:
            summary = " · ".join([f"{stale[0].result.target} {stale[0].staleness}", summary] if summary else [f"{stale[0].result.target} {stale[0].staleness}"])
        self._summary = summary
        if state != self.state:
            self.state = state
        else:
            self._set_titles()

    def _set_titles(self) -> None:
        # The state word sits in the title so it reads without colour (NO_COLOR, screenshots).
        title = f"{self.TITLE} · {self.state}" if self.state != "ok" else self.TITLE
        if self.border_title != title:
            self.border_title = title
        if self.border_subtitle != self._summary:
            self.border_subtitle = self._summary

    def show(self) -> None:
        raise NotImplementedError

    def on_resize(self) -> None:
        # Label widths depend on the pane's width (see `label_width`).
        self.show()

    def label_width(self, texts: Sequence[Text]) -> int:
        """One label width for all rows: the longest text, leaving a sparkline at least 8 wide."""
        room = max(10, self.scrollable_content_region.width - 7)
        return min(room, max((t.cell_len for t in texts), default=10))

    def show_series(self, lines: Sequence[tuple[str, Text, Sequence[float]]]) -> None:
        """Rows of text + sparkline keyed by the first item, aligned on one label width."""
        rows = self.sync_rows([key for key, _, _ in lines], lambda _key: SeriesRow())
        width = self.label_width([text for _, text, values in lines if values])
        for row, (_, text, values) in zip(rows, lines, strict=True):
            row.show(text, values, width)  # type: ignore[attr-defined]

    def action_drill_down(self) -> None:
        self.post_message(self.DrillDown(self))

    # --- keyed rows --------------------------------------------------------------------

    def sync_rows(self, keys: Sequence[str], make: Callable[[str], Widget]) -> list[Widget]:
        """Mount rows for new keys, drop rows of vanished keys, keep the rest in place."""
        wanted = {safe_id(self.id or "", key): key for key in keys}
        existing = {child.id: child for child in self.children if child.id}
        for child_id, child in existing.items():
            if child_id not in wanted and child_id.startswith("r-"):
                child.remove()
        rows: list[Widget] = []
        new: list[Widget] = []
        for child_id, key in wanted.items():
            row = existing.get(child_id)
            if row is None:
                row = make(key)
                row.id = child_id
                new.append(row)
            rows.append(row)
        if new:
            self.mount_all(new)
        return rows

    def set_empty(self, text: str | None) -> None:
        """A muted line shown while there is nothing to list."""
        found = self.query("Label.empty")
        if text is None:
            found.remove()
        elif found:
            label = found.first(Label)
            if str(label.content) != text:
                label.update(text)
        else:
            self.mount(Label(text, classes="empty"), before=0 if self.children else None)


BARS = "▁▂▃▄▅▆▇█"


class TrendLine(Sparkline):
    """A Sparkline drawn in one colour: one style run per line keeps terminal output small
    (the stock widget colours every bar, ~20 bytes of escape codes per cell per refresh)."""

    def render(self) -> Text:
        data = list(self.data or ())
        width = self.size.width
        if not data or width <= 0:
            return Text("")
        if len(data) > width:
            # Each bar shows the worst (max) reading of its bucket, like Sparkline's default.
            step = len(data) / width
            data = [max(data[int(i * step) : max(int(i * step) + 1, int((i + 1) * step))]) for i in range(width)]
        low, high = min(data), max(data)
        span = (high - low) or 1.0
        bars = "".join(BARS[min(7, int((v - low) / span * 7.999))] if high > low else BARS[0] for v in data)
        return Text(bars, style=self.get_component_rich_style("sparkline--max-color"), end="")


class SeriesRow(Horizontal):
    """A text line with a sparkline of its history on the right."""

    DEFAULT_CSS = """
    SeriesRow { height: 1; width: 1fr; }
    SeriesRow > Label { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SeriesRow > TrendLine { width: 1fr; min-width: 6; max-width: 60; height: 1; margin-left: 1; }
    SeriesRow > TrendLine > .sparkline--max-color { color: $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._text: Text | None = None
        self._data: tuple[float, ...] = ()
        self._width: int | None = None
        # Kept as attributes: rows are updated right after being mounted, before compose ran.
        self._label = Label()
        self._sparkline = TrendLine()

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._sparkline

    def show(self, text: Text, values: Sequence[float], label_width: int | None = None) -> None:
        """Set the text and history; `label_width` aligns the sparklines of a pane's rows."""
        if text != self._text:
            # One line of fixed size: only the first paint needs a layout pass.
            self._label.update(text, layout=self._text is None)
            self._text = text
        # Without history the text may use the whole row.
        width = label_width if values else None
        if width != self._width:
            self._width = width
            self._label.styles.width = width
        # The sparkline only has room for its width; skip redraws when that tail is unchanged.
        tail = tuple(values[-80:])
        if tail != self._data:
            self._data = tail
            self._sparkline.data = list(tail)
        if self._sparkline.display != bool(tail):
            self._sparkline.display = bool(tail)


class TextRow(Label):
    """A plain line that redraws only when its text changes."""

    DEFAULT_CSS = """
    TextRow { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def show(self, text: Text) -> None:
        old = getattr(self, "_text", None)
        if text != old:
            # One line of fixed size: only the first paint needs a layout pass.
            self.update(text, layout=old is None)
            self._text = text
