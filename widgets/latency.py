"""The Latency pane: a sparkline per HTTP endpoint with p50/p95 over the window."""

from __future__ import annotations

from functools import partial

from rich.text import Text

from probes.result import Status
from probes.units import duration_ms
from widgets.fleet import Row
from widgets.pane import SPARK_HISTORY, Pane, headline
from widgets.problems import describe
from widgets.store import STATE_RANK, Reading, worst_state

# Sparklines are scaled from 0 to the warn line (or the highest reading, when above it): jitter
# far below the line stays low bars, not a spike. Never below this, whatever the config says.
SCALE_FLOOR_MS = 50.0


class LatencyPane(Pane):
    """Latency history of every HTTP endpoint; p50/p95 over the kept window."""

    TITLE = "Latency"
    PROBES = ("http",)
    KINDS = ("http",)
    EMPTY = "no HTTP endpoints configured"
    DETAIL = "latency"

    FILTERS = True  # `/` filters this pane's rows (see Pane.FILTERS)

    def show(self) -> None:
        readings = self.store.readings("http")
        rows: list[Row] = []
        worst_p95 = 0.0
        percentile, values, group_of = self.store.percentile, self.store.values, self.store.group_of
        for reading in readings:
            key, target = reading.result.key, reading.result.target
            p95 = percentile(key, 95)
            if p95 is not None:
                worst_p95 = max(worst_p95, p95)
            rows.append(Row(target, partial(self.line, reading), reading.state, target, group_of(target),
                            partial(values, key, last=SPARK_HISTORY), p95, key, "http"))
        # One scale for the endpoints drawn, so their bars compare; stated in the title.
        warn_lines = [r.result.data.get("latency_warn_ms") for r in readings] + [self.thresholds.get("http", "latency_ms_warn")]
        floor = max(SCALE_FLOOR_MS, min(float(w) for w in warn_lines if isinstance(w, int | float)))
        shown = self.show_rows(rows, floor_ms=floor)
        if not rows:
            self.set_scale("")
        if self.filter_text and rows and not shown:
            self.set_empty(f"nothing matches /{self.filter_text}")
        else:
            self.set_empty(None if readings else self.empty_text(bool(readings)))
        state = worst_state(r.state for r in readings)
        # The count once the endpoints outnumber the pane's lines (then not every one is in view).
        ok = sum(r.state == "ok" for r in readings)
        count = f"{ok}/{len(readings)} ok" if self.overflows or self.filter_text else ""
        words = [count, self.worst_words(readings, worst_p95), self.shown_words(len(shown), len(rows))] if readings else []
        self.set_summary(state, " · ".join(w for w in words if w), readings)

    def line(self, reading: Reading) -> Text:
        """`● api p50 12 ms  p95 30 ms`, or why the endpoint has no latency to show."""
        key = reading.result.key
        p50, p95 = self.store.percentile(key, 50), self.store.percentile(key, 95)
        line = headline(reading)
        if p50 is None or p95 is None:
            # It has reported (a reading is here), only never with a latency: say why.
            line.append(" timeout" if reading.latest.data.get("timeout") else " no answer", style="dim")
        else:
            line.append(f" p50 {duration_ms(p50)}  p95 {duration_ms(p95)}")
        return line

    def worst_words(self, readings: list[Reading], worst_p95: float) -> str:
        """`worst: api slow 1.3 s, p95 1.4 s`, `worst: api timeout`: an endpoint that is not ok
        names itself (a timeout has no latency to rank by); else `worst p95 35 ms`. A stale one
        already leads the subtitle (`set_summary`)."""
        bad = [r for r in readings if r.state != "ok" and not r.stale]
        if not bad:
            return f"worst p95 {duration_ms(worst_p95)}"
        worst = max(bad, key=lambda r: (STATE_RANK[r.state], self.store.percentile(r.result.key, 95) or 0.0))
        words = "worst: " + describe(worst)[0][2]
        p95 = self.store.percentile(worst.result.key, 95)
        if p95 is not None and worst.latest.status is not Status.ERROR:
            words += f", p95 {duration_ms(p95)}"
        return words
