"""Panes for many targets: problems first, one line per group when rows are short, `/` filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual import events
from textual.widgets import Input

from probes.units import duration_ms
from widgets.store import is_problem, list_rank, worst_state

UNGROUPED = "other"  # the line for targets without a `group` key, when they do not fit either


@dataclass(slots=True)
class Row:
    """One target's line in a pane, with what ordering, grouping and filtering need.

    `text` and `values` may be given as functions that make them: a pane of 300 targets
    draws the few dozen lines that fit, and building the others' text at every redraw was
    most of a redraw's time."""

    key: str
    text: Text | Callable[[], Text]
    state: str
    name: str
    group: str = ""
    values: Sequence[float] | Callable[[], Sequence[float]] = ()  # its sparkline, oldest first
    p95: float | None = None
    series: tuple[str, ...] | None = None  # its latency history in the store, for a group's sparkline
    words: str = field(default="", repr=False)  # more text the filter looks in (kind, address)

    def line(self) -> Text:
        if callable(self.text):
            self.text = self.text()
        return self.text

    def history(self) -> Sequence[float]:
        if callable(self.values):
            self.values = self.values()
        return self.values


def matches(row: Row, text: str) -> bool:
    """Every word of the filter is in the row's name, group, state or other words."""
    haystack = f"{row.name} {row.group} {row.state} {row.words}".lower()
    return all(word in haystack for word in text.lower().split())


def in_order(rows: Sequence[Row]) -> list[Row]:
    """Problems first (fail, error, stale, warn), then the rest; the config's order within a state."""
    return sorted(rows, key=lambda row: list_rank(row.state))


def worst_series(series: Sequence[Sequence[float]]) -> list[float]:
    """Point by point, the highest of several histories aligned on their newest reading: a
    group's sparkline shows its slowest member at each moment."""
    # Histories of one length first, column by column with `map(max, ...)` (in C: a loop over
    # 1000 members' 80 points in Python took tens of milliseconds per redraw), then the few
    # lengths merged, aligned on the newest reading.
    by_length: dict[int, list[Sequence[float]]] = {}
    for values in series:
        if values:
            by_length.setdefault(len(values), []).append(values)
    longest = max(by_length, default=0)
    worst = [0.0] * longest
    for length, same in by_length.items():
        column = list(map(max, *same)) if len(same) > 1 else list(same[0])
        offset = longest - length
        for i, value in enumerate(column):
            if value > worst[offset + i]:
                worst[offset + i] = value
    return worst


History = Callable[[tuple[str, ...]], Sequence[float]]
# The last aggregate history of each group, with the member histories it was made of: the
# Services and Latency panes draw the same groups in the same redraw, from the same tails.
_WORST: dict[tuple[str, int], tuple[list[Sequence[float]], list[float]]] = {}


def _worst_of(name: str, histories: list[Sequence[float]]) -> list[float]:
    cached = _WORST.get((name, len(histories)))
    if cached is not None and all(a is b for a, b in zip(cached[0], histories, strict=True)):
        return cached[1]
    worst = worst_series(histories)
    if len(_WORST) > 64:  # groups of a fleet still starting (their sizes change): bounded
        _WORST.clear()
    _WORST[(name, len(histories))] = (histories, worst)
    return worst


def group_row(name: str, members: Sequence[Row], history: History, label: str | None = None) -> Row:
    """`● payments group  12/12 ok  worst p95 40 ms`, with the members' worst latency as sparkline."""
    from widgets.pane import dot

    state = worst_state(m.state for m in members)
    ok = sum(not is_problem(m.state) for m in members)
    line = dot(state) + Text(label or name, style="bold")
    line.append(" group" if label is None else "", style="dim")
    line.append(f"  {ok}/{len(members)} ok")
    p95s = [m.p95 for m in members if m.p95 is not None]
    if p95s:
        line.append(f"  worst p95 {duration_ms(max(p95s))}", style="dim")
    values = _worst_of(name, [history(m.series) for m in members if m.series is not None])
    return Row(f"group-{name}", line, state, name, name, values, max(p95s) if p95s else None)


def arrange(rows: Sequence[Row], room: int | None, history: History) -> tuple[list[Row], bool]:
    """The rows to draw, and whether they were grouped. With more rows than `room` lines, every
    problem still has its own line (first); the rest are one line per group, and those without
    a group are listed one by one as far as they fit, then one `N more` line for the healthy rest."""
    ordered = in_order(rows)
    if room is None or len(ordered) <= room:
        return ordered, False
    problems = [r for r in ordered if is_problem(r.state)]
    groups: dict[str, list[Row]] = {}
    for row in rows:  # config order: groups appear where their first member is
        if row.group:
            groups.setdefault(row.group, []).append(row)
    lines = list(problems)
    lines += [group_row(name, members, history) for name, members in groups.items() if any(not is_problem(m.state) for m in members)]
    loose = [r for r in ordered if not r.group and not is_problem(r.state)]
    if len(lines) + len(loose) <= room or len(loose) <= 1:
        lines += loose
    else:
        # As many as fit on their own lines, then one line sums up the healthy rest (the
        # problems have their own lines above: it never counts them again).
        shown = max(0, room - len(lines) - 1)
        rest = loose[shown:]
        lines += loose[:shown]
        lines.append(group_row(UNGROUPED, rest, history, label=f"{len(rest)} more"))
    return lines, True


class PaneFilter(Input):
    """The filter line a pane or drill-down shows while `/` is typed: it filters as you type,
    Enter keeps the filter, Esc clears it. `on_change(text, done)` is told each time."""

    DEFAULT_CSS = """
    PaneFilter { dock: top; border: none; height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self, value: str, on_change: Callable[[str, bool], object], *, id: str | None = None) -> None:
        super().__init__(value=value, placeholder="filter: part of a name, group or state", id=id)
        self._on_change = on_change

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._on_change(event.value, False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._on_change(event.value, True)

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            event.prevent_default()
            self._on_change("", True)
