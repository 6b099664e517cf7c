"""The Services pane: HTTP endpoints, DNS questions, TCP ports and Docker containers at a glance."""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text

from probes.units import duration_ms
from widgets.fleet import Row
from widgets.pane import DOT_STYLE, Pane, dot, headline
from widgets.store import Reading, format_bytes, worst_state


def endpoint_line(reading: Reading, p95: float | None) -> Text:
    data = reading.result.data
    line = headline(reading)
    if reading.result.status.value == "error" and not reading.stale:
        line.append(f"  {reading.result.summary}")
        return line
    code = data.get("status_code")
    line.append(f"  {code if code is not None else '---'}")
    latency = data.get("latency_ms", reading.result.value)
    if latency is not None:
        line.append(f"  {duration_ms(latency)}")
    if data.get("body_note") and reading.state in ("warn", "fail"):
        # What the failing answer says about itself (`upstream: failing`), before the p95:
        # the end of a line is what a narrow pane cuts.
        line.append(f"  {data['body_note']}", style=DOT_STYLE[reading.state])
    if p95 is not None:
        line.append(f"  p95 {duration_ms(p95)}", style="dim")
    return line


def dns_line(reading: Reading) -> Text:
    """`● api-dns  A api.sandbox.test  NOERROR  2.6 ms`: the question, the answer's rcode, its time."""
    data = reading.result.data
    line = headline(reading)
    line.append(f"  {data.get('type', '?')} {data.get('host', '?')}", style="dim")
    if reading.result.status.value == "error" and not reading.stale:
        line.append(f"  {reading.result.summary.removeprefix(f'{reading.result.target}: ')}")
        return line
    rcode = str(data.get("rcode") or "---")
    line.append(f"  {rcode}", style="" if rcode == "NOERROR" else DOT_STYLE["fail"])
    if data.get("query_ms") is not None:
        line.append(f"  {duration_ms(data['query_ms'])}")
    if data.get("expect_ok") is False:  # what it resolved to instead: the finding
        line.append(f"  → {', '.join(data.get('values') or ()) or 'nothing'}", style=DOT_STYLE["fail"])
    return line


def tcp_line(reading: Reading) -> Text:
    """`● search  127.0.0.1:9200  1.0 ms`, or why it did not connect."""
    data = reading.result.data
    line = headline(reading)
    line.append(f"  {data.get('address', '?')}", style="dim")
    if reading.result.status.value == "error" and not reading.stale:
        line.append(f"  {reading.result.summary.removeprefix(f'{reading.result.target}: ')}")
        return line
    line.append(f"  {duration_ms(data.get('connect_ms'))}")
    return line


def container_state(container: dict[str, Any]) -> str:
    """The probe's verdict on one container; one that is not running and not failing (created,
    exited with 0) is shown as idle, not as a fault."""
    status = str(container.get("status") or "ok")
    if status == "ok" and container.get("state") != "running":
        return "idle"
    return status


def container_line(container: dict[str, Any], state: str) -> Text:
    # A Compose container shows its service (`api`, `api 2` for a second replica), the name
    # its runbooks and the compose file use; others their container name.
    shown = container.get("service") or container.get("name")
    line = dot(state) + Text(str(shown) + (f" {container['replica']}" if container.get("replica") else ""), style="bold")
    line.append(f"  {container.get('state', '?')}")
    if container.get("health"):
        line.append(f" {container['health']}")
    line.append(f"  ↻{container.get('restart_count') or 0}")
    if container.get("cpu_pct") is not None:
        line.append(f"  {container['cpu_pct']:.0f}%", style="dim")
    if container.get("mem_bytes") is not None:
        line.append(f" {format_bytes(container['mem_bytes'])}", style="dim")
    if container.get("why") and state in ("warn", "fail"):
        line.append(f"  {container['why']}", style=DOT_STYLE[state])
    return line


class ServicesPane(Pane):
    """HTTP endpoints (status, last and p95 latency), DNS questions (rcode, time), TCP ports
    (connect time) and containers (state, health, restarts)."""

    TITLE = "Services"
    PROBES = ("http", "dns", "tcp", "containers")
    KINDS = ("http", "dns", "tcp", "docker")
    EMPTY = "no HTTP endpoints, DNS or TCP checks or Docker engine configured"
    DETAIL = "services"

    FILTERS = True  # `/` filters this pane's rows (see Pane.FILTERS)

    def show(self) -> None:
        rows: list[Row] = []
        states: list[str] = []
        stale: list[Reading] = []  # old data leads the subtitle (`set_summary`)
        group_of = self.store.group_of
        for reading in self.store.readings("http"):
            key, target = reading.result.key, reading.result.target
            p95 = self.store.percentile(key, 95)
            rows.append(Row(f"http-{target}", partial(endpoint_line, reading, p95), reading.state, target, group_of(target), (), p95, key, "http"))
            states.append(reading.state)
            stale += [reading] if reading.stale else []
        for probe, line_of in (("dns", dns_line), ("tcp", tcp_line)):
            for reading in self.store.readings(probe):
                key, target = reading.result.key, reading.result.target
                p95 = self.store.percentile(key, 95)
                rows.append(Row(f"{probe}-{target}", partial(line_of, reading), reading.state, target, group_of(target), (), p95, key, probe))
                states.append(reading.state)
                stale += [reading] if reading.stale else []
        for reading in self.store.readings("containers"):
            states.append(reading.state)
            stale += [reading] if reading.stale else []
            target = reading.result.target
            containers = reading.result.data.get("containers") or []
            if reading.latest.status.value == "error" and not reading.stale:
                rows.append(Row(f"docker-{target}", dot("error") + Text(reading.latest.summary), "error", target, group_of(target), words="docker"))
            elif reading.stale:
                line = dot("stale") + Text(f"{target}  {reading.staleness}", style="italic")
                rows.append(Row(f"docker-{target}", line, "stale", target, group_of(target), words="docker"))
            for container in containers:
                state = "stale" if reading.stale else container_state(container)
                name = str(container.get("name"))
                rows.append(Row(f"ctr-{name}", container_line(container, state), state, name, group_of(target), words=f"container {target}"))
        # One block of lines: they change together every refresh (latencies), and one widget
        # redraws faster than one per line.
        shown = self.show_rows(rows)
        if self.filter_text and rows and not shown:
            self.set_empty(f"nothing matches /{self.filter_text}")
        else:
            self.set_empty(None if rows else self.empty_text(bool(states)))
        bad = sum(s != "ok" for s in states)
        summary = f"{len(states) - bad}/{len(states)} ok" if states else ""
        summary = " · ".join(w for w in (summary, self.shown_words(len(shown), len(rows))) if w)
        self.set_summary(worst_state(states), summary, stale)
