"""Drill-down screens with full history charts: Replication, Latency and Queues (textual-plotext)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from probes.units import count, duration_ms, size
from tui.screens.details import DetailScreen, fill_table, num
from widgets.replication import replica_name
from widgets.store import format_age, format_bytes

Series = tuple[str, list[tuple[float, float]]]


def draw(plot: PlotextPlot, title: str, ylabel: str, series: Iterable[Series], now: float) -> None:
    """Redraw one chart; x is seconds before now so the screen reads the same at any hour."""
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    plt.title(title)
    plt.xlabel("seconds ago")
    plt.ylabel(ylabel)
    drawn = False
    for label, points in series:
        if points:
            plt.plot([t - now for t, _ in points], [v for _, v in points], label=label, marker="braille")
            drawn = True
    if not drawn:
        plt.text("no history yet", 0, 0)
    plot.refresh()


class ChartDetail(DetailScreen):
    DEFAULT_CSS = """
    ChartDetail PlotextPlot { height: 1fr; min-height: 6; }
    ChartDetail DataTable { height: auto; max-height: 10; }
    """

    def now(self) -> float:
        return self.app.store.last_update or self.app.store.clock()


class ReplicationDetail(ChartDetail):
    TITLE = "Replication"
    PROBES = ("replication",)

    def compose_body(self) -> ComposeResult:
        yield PlotextPlot(id="lag-bytes")
        yield PlotextPlot(id="lag-seconds")
        table: DataTable[str] = DataTable(id="replicas", cursor_type="row")
        table.add_columns("instance", "replica", "client", "state", "sync", "lag", "replay lag")
        yield table

    def refresh_view(self) -> None:
        store = self.app.store
        by_bytes: list[Series] = []
        by_time: list[Series] = []
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for reading in store.readings("replication"):
            result = reading.result
            if result.data.get("role") == "replica":
                by_time.append((f"{result.target} (own replay delay)", store.points(result.key)))
                rows.append((result.target, (result.target, "(this replica)", "", "paused" if result.data.get("replay_paused") else "replaying", "", format_bytes(result.data.get("receive_replay_gap_bytes")), format_age(result.data.get("replay_delay_s")))))
                continue
            for replica in result.data.get("replicas") or ():
                name = replica_name(replica)
                label = f"{result.target} → {name}"  # seen from the primary
                by_bytes.append((label, [(t, v / 1024 / 1024) for t, v in store.points((*result.key, name, "lag_bytes"))]))
                by_time.append((label, store.points((*result.key, name, "replay_lag_s"))))
                rows.append((f"{result.target}/{name}", (result.target, name, replica.get("client_addr") or "", replica.get("state") or "", replica.get("sync_state") or "", format_bytes(replica.get("lag_bytes")), format_age(replica.get("replay_lag_s")) if replica.get("replay_lag_s") is not None else "-")))
            for name in result.data.get("missing") or ():
                rows.append((f"{result.target}/{name}", (result.target, name, "", "NOT CONNECTED", "", "-", "-")))
        draw(self.query_one("#lag-bytes", PlotextPlot), "replication lag (MiB, on the primary)", "MiB", by_bytes, self.now())
        draw(self.query_one("#lag-seconds", PlotextPlot), "replay lag (seconds)", "s", by_time, self.now())
        fill_table(self.query_one("#replicas", DataTable), rows)


class LatencyDetail(ChartDetail):
    TITLE = "Latency"
    PROBES = ("http",)

    def compose_body(self) -> ComposeResult:
        yield PlotextPlot(id="latency")
        table: DataTable[str] = DataTable(id="latency-table", cursor_type="row")
        table.add_columns("endpoint", "state", "last", "p50", "p95", "max", "samples")
        yield table

    def refresh_view(self) -> None:
        store = self.app.store
        series: list[Series] = []
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for reading in store.readings("http"):
            key = reading.result.key
            values = store.values(key)
            series.append((reading.result.target, store.points(key)))
            rows.append((reading.result.target, (reading.result.target, reading.state, duration_ms(reading.result.value, unknown="-"), duration_ms(store.percentile(key, 50), unknown="-"), duration_ms(store.percentile(key, 95), unknown="-"), duration_ms(max(values) if values else None, unknown="-"), str(len(values)))))
        draw(self.query_one("#latency", PlotextPlot), "HTTP latency (ms)", "ms", series, self.now())
        fill_table(self.query_one("#latency-table", DataTable), rows)


def groups_cell(groups: Any) -> str:
    """A stream's consumer groups as words (`workers lag 3`), never a list of dicts."""
    if not isinstance(groups, list):
        return num(groups, "{}")
    shown = [f"{g.get('name')} lag {num(g.get('lag'), '{}')}" if isinstance(g, dict) else str(g) for g in groups[:3]]
    return ", ".join(shown) + (f" (+{len(groups) - 3})" if len(groups) > 3 else "") if shown else "-"


class QueuesDetail(ChartDetail):
    TITLE = "Queues"
    PROBES = ("queues", "memory", "memory_top")
    DEFAULT_CSS = """
    QueuesDetail #memory-table { max-height: 8; }
    QueuesDetail #memory-line { margin-top: 0; }
    """

    def compose_body(self) -> ComposeResult:
        yield PlotextPlot(id="depth")
        table: DataTable[str] = DataTable(id="queues-table", cursor_type="row")
        table.add_columns("redis", "queue", "type", "convention", "depth", "rate/s", "oldest", "pending", "lag", "groups")
        yield table
        yield Static(id="memory-line", classes="section")
        memory: DataTable[str] = DataTable(id="memory-table", cursor_type="row")
        memory.add_columns("redis", "biggest", "size", "share", "keys")
        yield memory

    def memory_view(self) -> tuple[list[str], list[tuple[str, tuple[Any, ...]]]]:
        """Per Redis: one line (usage, what was sampled), then its top prefixes and keys."""
        store = self.app.store
        lines, rows = [], []
        for reading in store.readings("memory"):
            target, data = reading.result.target, reading.result.data
            used, limit = data.get("used_memory"), data.get("maxmemory")
            line = f"{target}: memory {size(used)}" + (f" of {size(limit)} ({used / limit:.0%})" if used is not None and limit else "")
            top = store.reading(("redis", target, "memory_top"))
            if top is None:
                lines.append(f"{line} · biggest keys: not sampled yet")
                continue
            t = top.result.data
            if top.latest.status.value == "error" or "keys_sampled" not in t:
                lines.append(f"{line} · {top.latest.summary.removeprefix(f'{target}: ')}")
            else:
                age = f", {format_age(t.get('age_s'))} ago" if t.get("age_s") else ""
                of = f" of {count(t.get('dbsize'))}" if t.get("dbsize") is not None else ""
                lines.append(f"{line} · biggest of {count(t.get('keys_sampled'))}{of} keys sampled "
                             f"(MEMORY USAGE SAMPLES {t.get('samples')}{age})")
            for p in t.get("top_prefixes") or ():
                rows.append((f"{target}/p/{p.get('prefix')}", (target, f"{p.get('prefix')}", size(p.get("bytes")),
                                                                 f"{float(p.get('share') or 0):.0%}", count(p.get("keys")))))
            for k in t.get("top_keys") or ():
                rows.append((f"{target}/k/{k.get('key')}", (target, f"  {k.get('key')}", size(k.get("bytes")), "", "1")))
        return lines, rows

    def refresh_view(self) -> None:
        store = self.app.store
        series: list[Series] = []
        rows: list[tuple[str, tuple[Any, ...]]] = []
        for reading in store.readings("queues"):
            for q in reading.result.data.get("queues") or ():
                name = str(q.get("name"))
                key = (*reading.result.key, name, "depth")
                series.append((name, store.points(key)))
                age = q.get("oldest_age_s")
                rows.append((f"{reading.result.target}/{name}", (reading.result.target, name, q.get("type") or "", q.get("convention") or "", count(q.get("depth"), unknown="-"), num(store.rate(key), "{:+.2f}"), format_age(age) if age is not None else "unknown", count(q.get("pending"), unknown="-"), count(q.get("lag"), unknown="-"), groups_cell(q.get("groups")))))
        draw(self.query_one("#depth", PlotextPlot), "queue depth (jobs)", "jobs", series, self.now())
        fill_table(self.query_one("#queues-table", DataTable), rows)
        lines, memory_rows = self.memory_view()
        self.query_one("#memory-line", Static).update("\n".join(lines) or "no Redis memory readings yet")
        fill_table(self.query_one("#memory-table", DataTable), memory_rows)
