"""Drill-down screens for Services, Connections and Locks: every fact behind a pane."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from probes.units import duration_ms
from widgets.fleet import PaneFilter
from widgets.key_bar import KeyBar
from widgets.locks import instance_label, owner
from widgets.services import container_state
from widgets.store import Reading, format_age, format_bytes, list_rank

if TYPE_CHECKING:
    from tui.app import WarroomApp


def fill_table(table: DataTable[Any], rows: Sequence[tuple[str, Sequence[object]]]) -> None:
    """Show rows keyed by id; update cells in place when the keys are unchanged (keeps the cursor)."""
    keys = [key for key, _ in rows]
    if [k.value for k in table.rows] == keys:
        columns = list(table.columns)
        for key, cells in rows:
            for column, cell in zip(columns, cells, strict=False):
                if table.get_cell(key, column) != cell:
                    table.update_cell(key, column, cell)
        return
    cursor = table.cursor_row
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if rows:
        table.move_cursor(row=min(cursor, len(rows) - 1))


def num(value: Any, fmt: str = "{:.0f}", none: str = "-") -> str:
    return none if value is None else fmt.format(value)


def ms(value: float | None) -> str:
    """Milliseconds in the one unit system (`830 ms`, `1.4 s`, `64 s`); `-` when unknown."""
    return duration_ms(value, unknown="-")


class DetailScreen(Screen[None]):
    """A pane's full view; it follows live readings of its probes. Escape returns."""

    app: WarroomApp  # type: ignore[assignment]
    TITLE: ClassVar[str] = ""
    PROBES: ClassVar[tuple[str, ...]] = ()

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
    ]

    DEFAULT_CSS = """
    DetailScreen > #detail-title { dock: top; height: 1; width: 1fr; background: $panel; text-style: bold; padding: 0 1; }
    DetailScreen .section { text-style: bold; margin-top: 1; padding: 0 1; }
    DetailScreen DataTable { height: auto; max-height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Label(f"{self.app.env.name} › {self.TITLE}   (Esc: back)", id="detail-title")
        yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.show_readings()

    def store_changed(self, probes: set[str]) -> None:
        # Readings may arrive between push and mount; on_mount then shows the newest.
        if self.is_mounted and probes & set(self.PROBES):
            self.show_readings()

    def show_readings(self, tries: int = 20) -> None:
        """`refresh_view` once the body is there: widgets inside a container of the body are
        mounted by that container, which a busy machine may do after this screen's Mount."""
        try:
            self.refresh_view()
        except NoMatches:
            if tries:
                self.call_after_refresh(self.show_readings, tries - 1)

    def refresh_view(self) -> None:
        raise NotImplementedError


# The endpoint list's orders, in the order `s` cycles through them.
SORTS = ("config", "status", "latency")


class ServicesDetail(DetailScreen):
    """Every endpoint and container: `/` filters the endpoints, `s` sorts them by status
    (problems first) or latency (slowest first), else they keep the config's order."""

    TITLE = "Services"
    PROBES = ("http", "containers")

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("slash", "filter", "Filter endpoints", id="detail.filter"),
        Binding("s", "sort", "Sort: config/status/latency", id="detail.sort"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort = SORTS[0]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Label("HTTP endpoints", id="endpoints-title", classes="section")
            endpoints: DataTable[str] = DataTable(id="endpoints", cursor_type="row")
            endpoints.add_columns("", "endpoint", "url", "code", "latency", "p95", "connect", "tls", "ttfb", "json", "cert days", "summary")
            yield endpoints
            yield Label("Containers", classes="section")
            containers: DataTable[str] = DataTable(id="containers", cursor_type="row")
            containers.add_columns("", "name", "image", "state", "health", "restarts", "exit", "oom", "up", "cpu", "mem", "mem%")
            yield containers

    def action_filter(self) -> None:
        found = self.query(PaneFilter)
        box = found.first() if found else PaneFilter(self.filter_text, self._filter_changed, id="endpoints-filter")
        if not found:
            self.mount(box, before=self.query_one(VerticalScroll))
        box.focus()

    def _filter_changed(self, text: str, done: bool) -> None:
        if text.strip() != self.filter_text:
            self.filter_text = text.strip()
            self.refresh_view()
        if done:
            for box in self.query(PaneFilter):
                box.remove()
            self.query_one("#endpoints", DataTable).focus()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.refresh_view()

    def endpoints(self) -> list[Reading]:
        """The HTTP readings listed: those matching the filter, in the chosen order."""
        store = self.app.store
        found = store.readings("http")
        if self.filter_text:
            words = self.filter_text.lower().split()

            def haystack(r: Reading) -> str:
                return f"{r.result.target} {store.group_of(r.result.target)} {r.state} {r.result.data.get('url', '')}".lower()

            found = [r for r in found if all(w in haystack(r) for w in words)]
        if self.sort == "status":
            found.sort(key=lambda r: list_rank(r.state))  # stable: the config's order within a state
        elif self.sort == "latency":
            found.sort(key=lambda r: -(r.result.data.get("latency_ms") or (math.inf if r.state != "ok" else 0.0)))
        return found

    def refresh_view(self) -> None:
        store = self.app.store
        rows = []
        endpoints = self.endpoints()
        for reading in endpoints:
            d, phases = reading.result.data, reading.result.data.get("phases") or {}
            rows.append((reading.result.target, (
                reading.state, reading.result.target, d.get("url", ""), num(d.get("status_code"), "{}"),
                ms(d.get("latency_ms")), ms(store.percentile(reading.result.key, 95)),
                ms(phases.get("connect_ms")), ms(phases.get("tls_ms")),
                ms(phases.get("ttfb_ms")), num(d.get("json_ok"), "{}"),
                num(d.get("cert_days_left"), "{:.0f}"), reading.latest.summary,
            )))
        fill_table(self.query_one("#endpoints", DataTable), rows)
        every = store.readings("http")
        ok = sum(r.state == "ok" for r in every)
        title = f"HTTP endpoints · {ok}/{len(every)} ok" if every else "HTTP endpoints"
        if self.filter_text:
            title += f" · /{self.filter_text}: {len(endpoints)} shown"
        if self.sort != SORTS[0]:
            title += f" · by {self.sort}"
        self.query_one("#endpoints-title", Label).update(title)
        rows = []
        for reading in store.readings("containers"):
            for c in reading.result.data.get("containers") or ():
                rows.append((f"{reading.result.target}/{c.get('name')}", (
                    "stale" if reading.stale else container_state(c), c.get("name", ""), c.get("image", ""),
                    c.get("state", ""), c.get("health") or "-", num(c.get("restart_count"), "{}"),
                    num(c.get("exit_code"), "{}"), "yes" if c.get("oom_killed") else "no",
                    format_age(c.get("uptime_s")), num(c.get("cpu_pct"), "{:.1f}%"),
                    format_bytes(c.get("mem_bytes")), num(c.get("mem_pct"), "{:.0f}%"),
                )))
        fill_table(self.query_one("#containers", DataTable), rows)


class ConnectionsDetail(DetailScreen):
    TITLE = "Connections"
    PROBES = ("connections",)

    def compose_body(self) -> ComposeResult:
        yield Static(id="usage", classes="section")
        table: DataTable[str] = DataTable(id="sessions", cursor_type="row")
        table.add_columns("instance", "pid", "user", "application", "client", "state", "wait", "xact age", "query age", "query")
        yield table

    def refresh_view(self) -> None:
        lines, rows = [], []
        for reading in self.app.store.readings("connections"):
            d = reading.result.data
            line = Text(f"{reading.result.target}: {d.get('total', '?')}/{d.get('max_connections', '?')} connections")
            line.append(f", {d.get('waiting', 0)} waiting, oldest transaction {format_age(d['oldest_xact_age_s']) if d.get('oldest_xact_age_s') is not None else 'none'}")
            if reading.stale or reading.latest.status.value == "error":
                line.append(f"  [{reading.staleness if reading.stale else reading.latest.summary}]", style="italic")
            lines.append(line)
            for s in d.get("sessions") or ():
                wait = "/".join(str(w) for w in (s.get("wait_event_type"), s.get("wait_event")) if w)
                rows.append((f"{reading.result.target}/{s.get('pid')}", (
                    reading.result.target, str(s.get("pid")), s.get("usename") or "", s.get("application_name") or "",
                    s.get("client_addr") or "", s.get("state") or "", wait or "-", format_age(s.get("xact_age_s")),
                    format_age(s.get("query_age_s")), " ".join((s.get("query") or "").split())[:120],
                )))
        self.query_one("#usage", Static).update(Group(*lines) if lines else "no PostgreSQL configured")
        fill_table(self.query_one("#sessions", DataTable), rows)


class LocksDetail(DetailScreen):
    TITLE = "Locks"
    PROBES = ("locks",)

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="chains", can_focus=True):
            yield Static(id="chains-text")

    def refresh_view(self) -> None:
        # Indented with padding, not spaces: a query that wraps on a narrow terminal keeps its
        # indent on every line, so the tree still reads.
        parts: list[Text | Padding] = []
        for reading in self.app.store.readings("locks"):
            parts.append(instance_label(reading))
            for chain in reading.result.data.get("chains") or ():
                head = Text(f"blocker pid {chain.get('blocker_pid')}", style="bold red")
                head.append(f"  {chain.get('state') or '?'}  user {chain.get('usename') or '?'}")
                head.append(f"  app {chain.get('application_name') or '-'}  client {chain.get('client_addr') or 'local socket'}")
                head.append(f"  xact {format_age(chain.get('xact_age_s'))}")
                parts.append(Padding(head, (1, 0, 0, 2)))
                parts.append(Padding(Text(chain.get("query") or "", style="cyan"), (0, 0, 0, 4)))
                for s in chain.get("blocked_sessions") or ():
                    by = ", ".join(str(p) for p in s.get("blocked_by") or ())
                    who = owner(s)
                    waits = Text(f"└ pid {s.get('pid')} waits {format_age(s.get('wait_s'))} on {by}", style="bold")
                    if who:
                        waits.append(f"  {who}", style="not bold")
                    parts.append(Padding(waits, (0, 0, 0, 4)))
                    parts.append(Padding(Text(s.get("query") or "", style="cyan"), (0, 0, 0, 6)))
            parts.append(Text(""))
        self.query_one("#chains-text", Static).update(Group(*parts) if parts else "no PostgreSQL configured")
