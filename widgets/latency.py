"""The Latency pane: a sparkline per HTTP endpoint with p50/p95 over the window."""

from __future__ import annotations

from rich.text import Text

from widgets.pane import SPARK_HISTORY, Pane, headline
from widgets.store import worst_state


class LatencyPane(Pane):
    """Latency history of every HTTP endpoint; p50/p95 over the kept window."""

    TITLE = "Latency"
    PROBES = ("http",)
    KINDS = ("http",)
    EMPTY = "no HTTP endpoints configured"
    DETAIL = "latency"

    def show(self) -> None:
        readings = self.store.readings("http")
        lines: list[tuple[str, Text, list[float]]] = []
        worst_p95 = 0.0
        for reading in readings:
            key = reading.result.key
            p50 = self.store.percentile(key, 50)
            p95 = self.store.percentile(key, 95)
            line = headline(reading)
            if p50 is None or p95 is None:
                line.append(" no data yet", style="dim")
            else:
                line.append(f" p50 {p50:.0f}ms  p95 {p95:.0f}ms")
                worst_p95 = max(worst_p95, p95)
            lines.append((reading.result.target, line, self.store.values(key, last=SPARK_HISTORY)))
        self.show_series(lines)
        self.set_empty(None if readings else self.empty_text(bool(readings)))
        state = worst_state(r.state for r in readings)
        self.set_summary(state, f"worst p95 {worst_p95:.0f}ms" if readings else "", readings)
