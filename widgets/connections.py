"""The Connections pane: per PostgreSQL instance, used vs max, by state, waiting, oldest xact,
and a line for each session problem (idle in transaction, long queries, slow statements)."""

from __future__ import annotations

from rich.text import Text
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from probes.units import duration, duration_ms
from widgets.pane import Pane, dot, headline
from widgets.store import Reading, format_age, worst_state

# The session probes whose problems get a line under their instance (the drill-down lists all).
SESSION_PROBES = ("idle_in_transaction", "long_queries", "slow_statements")

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


def _owner(session: dict[str, object]) -> str:
    """`pid 1234, app shop`: who to ask (or terminate)."""
    parts = [f"pid {session.get('pid')}"]
    if session.get("application_name"):
        parts.append(f"app {session['application_name']}")
    elif session.get("usename"):
        parts.append(f"user {session['usename']}")
    return ", ".join(parts)


Problem = tuple[Text, str]  # what is wrong, and who: `▲ 1 idle in transaction 107 s`, `pid 1234, app shop`


def problem_line(reading: Reading) -> Problem | None:
    """(`  ▲ 1 idle in transaction 107 s`, `pid 1234, app shop`), or None when all is well (or
    the reading failed: the instance line says so already)."""
    result = reading.latest
    if reading.stale or result.status.value in ("ok", "error"):
        return None
    data, who = result.data, ""
    if result.probe == "idle_in_transaction" and data.get("sessions"):
        found = data["sessions"]
        words, who = f"{len(found)} idle in transaction {duration(found[0].get('idle_s'))}", _owner(found[0])
    elif result.probe == "long_queries" and data.get("queries"):
        found = data["queries"]
        running = "query running" if len(found) == 1 else "queries running, longest"
        words, who = f"{len(found)} {running} {duration(found[0].get('duration_s'))}", _owner(found[0])
    elif result.probe == "slow_statements" and data.get("statements"):
        top = max(data["statements"], key=lambda st: st.get("mean_ms") or 0)
        words, who = f"slowest statement {duration_ms(top.get('mean_ms'))} mean", str(top.get("query") or "")
    else:
        words = result.summary.removeprefix(f"{result.target}: ")
    return Text("  ") + dot(reading.state) + Text(words), who


def problem_rows(problem: Problem, width: int) -> list[Text]:
    """One line, `head (who)`, when it fits; else `who` on a line of its own, indented: the
    culprit is the point of the line, it must not be cut off."""
    head, who = problem
    if not who:
        return [head]
    one = head + Text(f" ({who})")
    if one.cell_len <= width:
        return [one]
    return [head, Text(f"    {who}", style="dim")]


BAR_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "error": "red", "stale": "dim"}


def usage_bar(reading: Reading, width: int = 14) -> Text:
    """`████████░░░░░░  58%`: drawn as text, not a ProgressBar widget, whose one-second
    timer and repaint would cost CPU and terminal output on every pane refresh. Filled and
    empty parts differ in shape, not only in colour, so the bar reads under NO_COLOR."""
    data = reading.result.data
    total, limit = data.get("total"), data.get("max_connections")
    if not total or not limit:
        return Text("")
    ratio = max(0.0, min(1.0, total / limit))
    filled = round(ratio * width)
    bar = Text(" ")
    bar.append("█" * filled, style=BAR_STYLE.get(reading.state, ""))
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {ratio:4.0%}")
    return bar


class InstanceRow(Widget):
    """One PostgreSQL instance: name, count and usage bar on one line, the breakdown below,
    then a line per session problem.

    One widget for all its lines: each widget on screen costs time at every redraw."""

    DEFAULT_CSS = """
    InstanceRow { height: auto; width: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[Text, Text, Text, tuple[Problem, ...]] | None = None

    def show(self, reading: Reading, problems: tuple[Problem, ...] = ()) -> None:
        shown = (usage_line(reading), usage_bar(reading), detail_line(reading), problems)
        if shown != self._shown:
            before = self._shown
            self._shown = shown
            # A layout pass only when lines may come or go, not at every reading.
            width = self.size.width
            self.refresh(layout=before is None or self._height(before[3], width) != self._height(problems, width))

    @staticmethod
    def _height(problems: tuple[Problem, ...], width: int) -> int:
        return 2 + sum(len(problem_rows(p, width)) for p in problems)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._height(self._shown[3] if self._shown else (), width)

    def render(self) -> Content:
        if self._shown is None:
            return Content("")
        width = self.size.width
        extra = [line.copy() for problem in self._shown[3] for line in problem_rows(problem, width)]
        usage, bar, detail = (part.copy() for part in self._shown[:3])
        # The bar sits at the right edge; the name and count give way first.
        usage.truncate(max(0, width - bar.cell_len), overflow="ellipsis", pad=True)
        for line in (detail, *extra):
            line.truncate(width, overflow="ellipsis")
        # Part by part, as a Label would convert each: the same colours as the other panes.
        console = self.app.console
        parts = [Content.from_rich_text(part, console=console) for part in (usage, bar, detail, *extra)]
        lines = [parts[2], *parts[3:]]
        return Content.assemble(parts[0], parts[1], *(piece for line in lines for piece in ("\n", line)))


class ConnectionsPane(Pane):
    """Connection usage of every PostgreSQL instance."""

    TITLE = "Connections"
    PROBES = ("connections", *SESSION_PROBES)
    KINDS = ("postgres",)
    EMPTY = "no PostgreSQL configured"
    DETAIL = "connections"

    def show(self) -> None:
        readings = self.store.readings("connections")
        rows = self.sync_rows([r.result.target for r in readings], lambda _key: InstanceRow())
        problems: dict[str, list[Problem]] = {}
        states = [r.state for r in readings]
        for probe in SESSION_PROBES:
            for reading in self.store.readings(probe):
                line = problem_line(reading)
                if line is not None:
                    problems.setdefault(reading.result.target, []).append(line)
                    states.append(reading.state)
        for row, reading in zip(rows, readings, strict=True):
            row.show(reading, tuple(problems.get(reading.result.target, ())))  # type: ignore[attr-defined]
        self.set_empty(None if readings else self.empty_text(bool(readings)))
        used = [r.result.value for r in readings if r.result.value is not None]
        summary = f"max usage {max(used):.0%}" if used else ""
        waiting = sum(r.result.data.get("waiting") or 0 for r in readings)
        if waiting:
            summary += f" · {waiting} waiting"
        self.set_summary(worst_state(states), summary, readings)
