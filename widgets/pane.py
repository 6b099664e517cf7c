"""The base of every cockpit pane: title, one-glance state colour, rows that update in place."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar
from weakref import WeakSet

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label

from probes.thresholds import Thresholds
from probes.units import duration_ms
from widgets.fleet import PaneFilter, Row, arrange, matches

# Re-exported: panes import the sparkline helpers from here.
from widgets.series_rows import SPARK_HISTORY, SPARK_MAX, SPARK_MIN, SeriesRows, bars, scale_top  # noqa: F401
from widgets.store import Reading, ResultStore

STATES = ("ok", "warn", "fail", "error", "stale")
# Rich styles for the dot in front of a row; NO_COLOR strips them, the words stay.
DOT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "error": "bold magenta", "stale": "dim", "idle": "dim"}
DOT = {"ok": "●", "warn": "▲", "fail": "✖", "error": "✖", "stale": "○", "idle": "◌"}


# Screens that focused a pane once: the first focus is the screen's own (see `Pane.on_focus`).
_FOCUSED_SCREENS: WeakSet[object] = WeakSet()


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
    KINDS: ClassVar[tuple[str, ...]] = ()  # target kinds whose readings this pane shows
    EMPTY: ClassVar[str] = ""  # shown when no target of those kinds is configured
    DETAIL: ClassVar[str] = ""  # the drill-down screen's name in the app
    FILTERS: ClassVar[bool] = False  # `/` filters its rows (else `/` is the runbook filter)

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("enter", "drill_down", "Details", id="pane.details"),
        Binding("slash", "filter", "Filter pane", id="pane.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="pane.clear_filter"),
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

    def __init__(
        self,
        store: ResultStore,
        *,
        thresholds: Thresholds | None = None,
        configured: bool = True,
        id: str | None = None,
    ) -> None:
        # Title and state class from the start: setting them once mounted restyles the pane
        # and delays the first frame.
        super().__init__(id=id, classes="-ok")
        self.border_title = self.TITLE
        self.store = store
        self.thresholds = thresholds or Thresholds()
        self.configured = configured
        self._summary = ""
        self._scale = ""
        self._series_width: int | None = None
        self.filter_text = ""  # what `/` was given: only matching rows are listed
        self.picked = False  # focused by the operator, not by the screen at start (`on_focus`)
        self.overflows = False  # more rows than lines: `/` filters (see `check_action`)
        self._show_due = False  # a redraw is queued (see `watch_version`)

    def compose(self) -> ComposeResult:
        # Nothing to draw until the first reading: a muted line says which case this is.
        yield Label(self.empty_text(), classes="empty")

    def empty_text(self, readings: bool = False) -> str:
        """Why the pane is empty: nothing configured, no reading yet, or nothing to list."""
        if not self.configured:
            return self.EMPTY
        return "nothing to show" if readings else "waiting for first readings…"

    def on_mount(self) -> None:
        if self.store.latest:
            self.show()

    def watch_version(self) -> None:
        # In this pane's own message queue, not inside the screen's handler that bumped the
        # version: with 1000 targets each pane's redraw takes milliseconds, and a key pressed
        # meanwhile is handled between two panes instead of after all of them.
        if not self._show_due:
            self._show_due = True
            self.call_later(self._show_now)

    def _show_now(self) -> None:
        self._show_due = False
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
        if self._scale:
            title += f" · {self._scale}"
        if self.filter_text:
            title += f" · /{self.filter_text}"
        if self.border_title != title:
            self.border_title = title
        if self.border_subtitle != self._summary:
            self._set_subtitle(self._summary)

    def _set_subtitle(self, summary: str) -> None:
        """Textual repaints a whole widget, every line of it, when its border subtitle changes;
        only the bottom border shows it. The Latency pane's "worst p95" moves every second:
        repainting that line alone took the pane's share of a frame from 1.7 ms to 0.2 ms."""
        width, height = self.outer_size  # the border is outside `size` (the content area)
        if not (summary and self.border_subtitle and height):
            self.border_subtitle = summary  # appears, disappears, or not laid out yet
            return
        # What Textual's `border_subtitle` setter stores, without its whole-widget refresh
        # (Textual is pinned in pyproject.toml; the subtitle test fails if this goes stale).
        self._border_subtitle = self.render_str(summary).expand_tabs(4).split()[0]
        self.refresh(Region(0, height - 1, width, 1).translate(-self.content_offset))

    def set_scale(self, text: str) -> None:
        """The sparklines' scale (`0–200 ms`), stated in the title after the state word."""
        if text != self._scale:
            self._scale = text
            self._set_titles()

    def show(self) -> None:
        raise NotImplementedError

    def on_resize(self) -> None:
        # Label widths depend on the pane's width (see `label_width`).
        self.show()

    def label_width(self, texts: Sequence[Text]) -> int:
        """One label width for all rows: the longest text, leaving a sparkline at least 8 wide."""
        room = max(10, self.scrollable_content_region.width - 7)
        return min(room, max((t.cell_len for t in texts), default=10))

    def show_series(self, lines: Sequence[tuple[str, Text, Sequence[float]] | tuple[str, Text, Sequence[float], float | None]]) -> None:
        """Rows of text + sparkline (the first item names the row), aligned on one label width.
        A fourth item is the top of that row's sparkline scale (see `bars`)."""
        rows = self.sync_rows(["series"] if lines else [], lambda _key: SeriesRows())
        width = self.label_width([line[1] for line in lines if line[2]])
        # A latency going from 9ms to 10ms must not shift every sparkline of the pane (and
        # redraw every row): the alignment grows at once but shrinks only by a clear margin.
        kept = self._series_width
        if kept is not None and width <= kept < width + 4:
            width = kept
        self._series_width = width
        if rows:
            rows[0].show([(line[1], line[2], line[3] if len(line) > 3 else None) for line in lines], width)  # type: ignore[attr-defined,misc]

    def action_drill_down(self) -> None:
        self.post_message(self.DrillDown(self))

    # --- many targets: order, groups, filter ------------------------------------------

    def room(self) -> int | None:
        """Lines the pane shows without scrolling (None before its first layout)."""
        height = self.scrollable_content_region.height
        if not height:
            return None
        return max(1, height - len(self.query(PaneFilter)))

    def show_rows(self, rows: Sequence[Row], top: float | None = None, floor_ms: float = 50.0) -> list[Row]:
        """Draw rows problems first, one line per group when they outnumber the pane's lines,
        only those matching the filter; returns the matching rows. Without `top`, the drawn
        sparklines share a scale from 0 to their highest reading or `floor_ms`, stated in the
        title. Only drawn lines have their text and history made (see `Row`)."""
        room = self.room()
        overflows = room is not None and len(rows) > room
        if overflows != self.overflows:
            self.overflows = overflows
            self.refresh_bindings()
        shown = [row for row in rows if matches(row, self.filter_text)] if self.filter_text else list(rows)
        lines, _grouped = arrange(shown, room, lambda key: self.store.tail(key, SPARK_HISTORY))
        if top is None:
            drawn = [v for row in lines for v in row.history()]
            top = scale_top(drawn, floor_ms) if drawn else None
            self.set_scale(f"0–{duration_ms(top)}" if top is not None else "")
        self.show_series([(row.key, row.line(), row.history(), top) for row in lines])
        return shown

    def shown_words(self, shown: int, total: int) -> str:
        """`12 of 300 shown` while a filter hides some rows."""
        return f"{shown} of {total} shown" if self.filter_text else ""

    def on_focus(self) -> None:
        # The screen focuses its first pane itself at start: `/` then still finds a runbook
        # (`/lock⏎`); once the operator moved to a pane (1-6, Tab, a click) that lists more
        # targets than it has lines, `/` filters that pane.
        screen = self.screen
        self.picked = screen in _FOCUSED_SCREENS
        _FOCUSED_SCREENS.add(screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            # False: the key goes on to the screen (the runbook filter).
            return self.FILTERS and ((self.picked and self.overflows) or bool(self.filter_text))
        if action == "clear_filter":
            return bool(self.filter_text)
        return True

    def action_filter(self) -> None:
        found = self.query(PaneFilter)
        box = found.first() if found else PaneFilter(self.filter_text, self._filter_changed)
        if not found:
            self.mount(box, before=0)
        box.focus()

    def action_clear_filter(self) -> None:
        self._filter_changed("", True)

    def _filter_changed(self, text: str, done: bool) -> None:
        text = text.strip()
        if text != self.filter_text:
            self.filter_text = text
            self._set_titles()
            self.show()
            self.refresh_bindings()
        if done:
            for box in self.query(PaneFilter):
                box.remove()
            self.focus()

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
        """A muted line shown while there is nothing to list (see `empty_text`)."""
        found = [child for child in self.children if isinstance(child, Label) and child.has_class("empty")]
        if text is None:
            for label in found:
                label.remove()
        elif found:
            if str(found[0].content) != text:
                found[0].update(text)
        else:
            self.mount(Label(text, classes="empty"), before=0 if self.children else None)
