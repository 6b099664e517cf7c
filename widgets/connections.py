"""The Connections pane: per PostgreSQL instance, used vs max, by state, waiting, oldest xact."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.widget import Widget

from widgets.pane import Pane, headline
from widgets.store import Reading, format_age, worst_state

# Short names keep a pane 40 columns wide readable; the drill-down shows the full words.
SHORT_STATE = {"active": "act", "idle": "idle", "idle in transaction": "iit", "idle in transaction (aborted)": "iit!"}


def usage_line(reading: Reading) -> Text:
    data = reading.result.data
    line = headline(reading)
    if "total" in data:
        line.append(f" {data['total']}/{data.get('max_connections', '?')}")
    elif reading.result.status.value == "error":
        line.append(f"  {reading.result.summary}")
    return line


def detail_line(reading: Reading) -> Text:
    data = reading.result.data
    by_state = data.get("by_state") or {}
    order = {state: i for i, state in enumerate(SHORT_STATE)}
    states = sorted(by_state.items(), key=lambda kv: (order.get(kv[0], 9), kv[0]))
    line = Text("  " + " ".join(f"{SHORT_STATE.get(s, s)} {n}" for s, n in states), style="dim")
    waiting = data.get("waiting") or 0
    line.append(f" │ wait {waiting}", style="bold yellow" if waiting else "dim")
    oldest = data.get("oldest_xact_age_s")
    if oldest is not None:
        line.append(f" │ old {format_age(oldest)}", style="dim")
    return line


BAR_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "error": "red", "stale": "dim"}


def usage_bar(reading: Reading, width: int = 14) -> Text:
    """`━━━━━━━━╺━━━━━  58%`: drawn as text, not a ProgressBar widget, whose one-second
    timer and repaint would cost CPU and terminal output on every pane refresh."""
    data = reading.result.data
    total, limit = data.get("total"), data.get("max_connections")
    if not total or not limit:
        return Text("")
    ratio = max(0.0, min(1.0, total / limit))
    filled = round(ratio * width)
    bar = Text(" ")
    bar.append("━" * filled, style=BAR_STYLE.get(reading.state, ""))
    bar.append("━" * (width - filled), style="dim")
    bar.append(f" {ratio:4.0%}")
    return bar


class InstanceRow(Widget):
    """One PostgreSQL instance: name, count and usage bar on one line, the breakdown below.

    One widget for both lines: each widget on screen costs time at every redraw."""

    DEFAULT_CSS = """
    InstanceRow { height: 2; width: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[Text, Text, Text] | None = None

    def show(self, reading: Reading) -> None:
        shown = (usage_line(reading), usage_bar(reading), detail_line(reading))
        if shown != self._shown:
            self._shown = shown
            self.refresh()

    def render(self) -> Content:
        if self._shown is None:
            return Content("")
        usage, bar, detail = (part.copy() for part in self._shown)
        width = self.size.width
        # The bar sits at the right edge; the name and count give way first.
        usage.truncate(max(0, width - bar.cell_len), overflow="ellipsis", pad=True)
        detail.truncate(width, overflow="ellipsis")
        # Part by part, as a Label would convert each: the same colours as the other panes.
        console = self.app.console
        parts = [Content.from_rich_text(part, console=console) for part in (usage, bar, detail)]
        return Content.assemble(parts[0], parts[1], "\n", parts[2])


class ConnectionsPane(Pane):
    """Connection usage of every PostgreSQL instance."""

    TITLE = "Connections"
    PROBES = ("connections",)
    KINDS = ("postgres",)
    EMPTY = "no PostgreSQL configured"
    DETAIL = "connections"

    def show(self) -> None:
        readings = self.store.readings("connections")
        rows = self.sync_rows([r.result.target for r in readings], lambda _key: InstanceRow())
        for row, reading in zip(rows, readings, strict=True):
            row.show(reading)  # type: ignore[attr-defined]
        self.set_empty(None if readings else self.empty_text(bool(readings)))
        used = [r.result.value for r in readings if r.result.value is not None]
        summary = f"max usage {max(used):.0%}" if used else ""
        waiting = sum(r.result.data.get("waiting") or 0 for r in readings)
        if waiting:
            summary += f" · {waiting} waiting"
        self.set_summary(worst_state(r.state for r in readings), summary, readings)
