"""The Replication pane: per replica state and lag in bytes and seconds, with lag history."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from probes.result import grade
from widgets.pane import SPARK_HISTORY, Pane, dot, headline, scale_top
from widgets.store import Reading, format_age, format_bytes, worst_state

# Sparklines reach at least the warn lines (and never less than these): a few KiB of lag or a
# second of delay on an idle replica stays low bars, not a spike.
SCALE_FLOOR_BYTES = 1024 * 1024.0
SCALE_FLOOR_S = 5.0
MIB = 1024 * 1024


def replica_name(replica: dict[str, Any]) -> str:
    return str(replica.get("application_name") or replica.get("client_addr") or "?")


class ReplicationPane(Pane):
    """Streaming replication seen from the primary (per replica) and from each replica."""

    TITLE = "Replication"
    PROBES = ("replication",)
    KINDS = ("postgres",)
    EMPTY = "no PostgreSQL configured"
    DETAIL = "replication"

    def replica_state(self, replica: dict[str, Any]) -> str:
        limits = self.thresholds.of("replication")
        by_bytes = grade(replica.get("lag_bytes"), limits["lag_bytes_warn"], limits["lag_bytes_fail"])
        by_time = grade(replica.get("replay_lag_s"), limits["replay_lag_s_warn"], limits["replay_lag_s_fail"])
        return max(by_bytes, by_time, key=lambda s: s.rank).value

    def lines(self, reading: Reading) -> list[tuple[str, Text, list[float]]]:
        """(row key, text, history) for one replication reading."""
        result, data = reading.result, reading.result.data
        if result.status.value == "error" and not reading.stale:
            return [(result.target, dot("error") + Text(result.summary), [])]
        if data.get("role") == "replica":
            line = headline(reading)
            line.append(f" delay {format_age(data.get('replay_delay_s'))}")
            line.append(" paused" if data.get("replay_paused") else " replaying", style="bold" if data.get("replay_paused") else "dim")
            return [(result.target, line, self.store.values(result.key, last=SPARK_HISTORY))]
        rows: list[tuple[str, Text, list[float]]] = []
        for replica in data.get("replicas") or ():
            name = replica_name(replica)
            state = "stale" if reading.stale else self.replica_state(replica)
            # Seen from the primary: `primary → replica1`, unlike the replica's own row below.
            line = dot(state) + Text(f"{result.target} → {name}", style="bold")
            if reading.stale:
                line.append(f" {reading.staleness}", style="italic")
            # The lag first: on a narrow pane the end of the line is what gets cut.
            line.append(f" {format_bytes(replica.get('lag_bytes'))}")
            lag_s = replica.get("replay_lag_s")
            if lag_s is not None:  # NULL while no WAL flows: nothing to replay, nothing to show
                line.append(f" {format_age(lag_s)}")
            line.append(f" {replica.get('state') or '?'}", style="dim")
            rows.append((f"{result.target}-{name}", line, self.store.values((*result.key, name, "lag_bytes"), last=SPARK_HISTORY)))
        for name in data.get("missing") or ():
            line = dot("fail") + Text(name, style="bold") + Text("  not connected", style="bold red")
            rows.append((f"{result.target}-{name}", line, []))
        if not rows:
            line = dot(reading.state) + Text(f"{result.target}: no replicas", style="dim")
            rows.append((result.target, line, []))
        return rows

    def show(self) -> None:
        readings = self.store.readings("replication")
        lines = [line for reading in readings for line in self.lines(reading)]
        # Two units: bytes of lag seen from the primary, seconds of delay on a replica. One
        # scale per unit, both stated in the title.
        replica_rows = {r.result.target for r in readings if r.result.data.get("role") == "replica"}
        delays = [v for key, _, values in lines if key in replica_rows for v in values]
        lags = [v for key, _, values in lines if key not in replica_rows for v in values]
        limits = self.thresholds.of("replication")
        delay_top = scale_top(delays, max(SCALE_FLOOR_S, limits["replay_lag_s_warn"]))
        lag_top = scale_top(lags, max(SCALE_FLOOR_BYTES, limits["lag_bytes_warn"]), MIB)
        self.show_series([(key, text, values, delay_top if key in replica_rows else lag_top) for key, text, values in lines])
        # `0–50 MiB/20 s`: both scales in a title that still fits a 40-column pane.
        scales = ([f"{lag_top / MIB:g} MiB"] if lags else []) + ([format_age(delay_top)] if delays else [])
        self.set_scale(f"0–{'/'.join(scales)}" if scales else "")
        self.set_empty(None if readings else self.empty_text(bool(readings)))
        lags = [r.result.value for r in readings if r.result.data.get("role") == "primary" and r.result.value is not None]
        summary = f"max lag {format_bytes(max(lags))}" if lags else ""
        self.set_summary(worst_state(r.state for r in readings), summary, readings)
