"""The Connections pane: per PostgreSQL instance, used vs max, by state, waiting, oldest xact."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label

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


class InstanceRow(Vertical):
    """One PostgreSQL instance: name, count and usage bar on one line, the breakdown below."""

    DEFAULT_CSS = """
    InstanceRow { height: auto; }
    InstanceRow > Horizontal { height: 1; }
    InstanceRow Label.usage { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    InstanceRow Label.bar { width: auto; height: 1; }
    InstanceRow Label.detail { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[Text, ...] = ()
        # Kept as attributes: rows are updated right after being mounted, before compose ran.
        self._usage = Label(classes="usage")
        self._bar = Label(classes="bar")
        self._detail = Label(classes="detail")

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield self._usage
            yield self._bar
        yield self._detail

    def show(self, reading: Reading) -> None:
        shown = (usage_line(reading), usage_bar(reading), detail_line(reading))
        if shown == self._shown:
            return
        previous = self._shown or (None, None, None)
        self._shown = shown
        for label, old, new in zip((self._usage, self._bar, self._detail), previous, shown, strict=True):
            if old != new:
                # First paint needs a layout; afterwards only the bar's width may change.
                label.update(new, layout=old is None or label is self._bar)


class ConnectionsPane(Pane):
    """Connection usage of every PostgreSQL instance."""

    TITLE = "Connections"
    PROBES = ("connections",)
    DETAIL = "connections"

    def show(self) -> None:
        readings = self.store.readings("connections")
        rows = self.sync_rows([r.result.target for r in readings], lambda _key: InstanceRow())
        for row, reading in zip(rows, readings, strict=True):
            row.show(reading)  # type: ignore[attr-defined]
        self.set_empty(None if readings else "no PostgreSQL configured")
        used = [r.result.value for r in readings if r.result.value is not None]
        summary = f"max usage {max(used):.0%}" if used else ""
        waiting = sum(r.result.data.get("waiting") or 0 for r in readings)
        if waiting:
            summary += f" · {waiting} waiting"
        self.set_summary(worst_state(r.state for r in readings), summary, readings)
