"""The Queues pane: depth, trend and oldest job per queue, plus Redis memory and clients (and,
when memory is the problem, the key prefix that holds it)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from probes.result import grade
from probes.units import count, size
from widgets.pane import SPARK_HISTORY, Pane, dot, scale_top
from widgets.store import Reading, format_age, format_bytes, worst_state

STEADY_RATE = 0.05  # jobs/s below which a queue counts as steady, not growing or draining
SCALE_FLOOR_JOBS = 10.0  # sparklines reach at least the depth warn line, never less than this
STATE_ORDER = {"waiting": 0, "log": 1, "delayed": 2, "in_flight": 3}  # probes.redis_queues' states


def trend(rate: float | None, depth: float | None = None) -> Text:
    """`↑14.7/s`, `↓32.2/s`, `→0/s`; an empty queue that just drained says `drained`, not a
    falling rate beside `0 waiting`. The arrow carries the sign."""
    if rate is None:
        return Text(" →", style="dim")
    if rate > STEADY_RATE:
        return Text(f" ↑{rate:.1f}/s", style="yellow")
    if rate < -STEADY_RATE:
        return Text(" drained", style="green") if depth == 0 else Text(f" ↓{-rate:.1f}/s", style="green")
    return Text(" →0/s", style="dim")


class QueuesPane(Pane):
    """Job queues found in Redis, with the Redis instance's own memory and clients."""

    TITLE = "Queues"
    PROBES = ("queues", "memory", "clients", "ping", "memory_top")
    KINDS = ("redis",)
    EMPTY = "no Redis configured"
    DETAIL = "queues"

    def queue_state(self, queue: dict[str, Any]) -> str:
        limits = self.thresholds.of("queues")
        by_depth = grade(queue.get("depth"), limits["depth_warn"], limits["depth_fail"])
        by_age = grade(queue.get("oldest_age_s"), limits["age_s_warn"], limits["age_s_fail"])
        return max(by_depth, by_age, key=lambda s: s.rank).value

    def server_line(self, target: str) -> tuple[Text, list[str]]:
        states: list[str] = []
        parts = Text()
        for probe in ("ping", "memory", "clients"):
            reading = self.store.reading(("redis", target, probe))
            if reading is None:
                continue
            states.append(reading.state)
            data = reading.result.data
            if reading.result.status.value == "error" and not reading.stale:
                return dot("error") + Text(reading.result.summary), ["error"]
            if probe == "memory" and "used_memory" in data:
                ratio = reading.result.value
                parts.append(f"  mem {format_bytes(data['used_memory'])}")
                if ratio is not None:
                    parts.append(f" {ratio:.0%}")
            elif probe == "clients" and "connected_clients" in data:
                parts.append(f"  clients {count(data['connected_clients'])}")
        state = worst_state(states)
        return dot(state) + Text(target, style="bold") + parts, states

    def culprit_line(self, target: str) -> Text | None:
        """`  top warroom:ballast:* 56.0 MiB (97%)`: the prefix holding the most of the sampled
        memory, once memory is a problem (the drill-down lists the rest and the sample's size)."""
        memory = self.store.reading(("redis", target, "memory"))
        top = self.store.reading(("redis", target, "memory_top"))
        if memory is None or top is None or memory.state not in ("warn", "fail") or top.latest.status.value == "error":
            return None
        prefixes = top.result.data.get("top_prefixes") or ()
        if not prefixes:
            return None
        head = prefixes[0]
        line = Text("  top ", style="dim") + Text(str(head.get("prefix")), style="bold")
        line.append(f" {size(head.get('bytes'))} ({float(head.get('share') or 0):.0%})")
        return line

    def queue_line(self, reading: Reading, queue: dict[str, Any]) -> tuple[Text, list[float]]:
        if queue.get("library"):
            return self.library_line(reading, queue)
        name = str(queue.get("name"))
        key = (*reading.result.key, name, "depth")
        state = "stale" if reading.stale else self.queue_state(queue)
        line = dot(state) + Text(name, style="bold") + Text(f"  {count(queue.get('depth'))}")
        if reading.stale:
            line.append(f" {reading.staleness}", style="italic")
        line.append_text(trend(self.store.rate(key), queue.get("depth")))
        age = queue.get("oldest_age_s")
        line.append(f" old {format_age(age)}" if age is not None else " old unknown", style="dim")
        return line, self.store.values(key, last=SPARK_HISTORY)

    def library_line(self, reading: Reading, queue: dict[str, Any]) -> tuple[Text, list[float]]:
        """`celery default  12 waiting →0/s, oldest 43 s`, `rq emails  3 delayed, next in 2m00s`,
        `bullmq videos  2 in flight`: the library's name for the queue, and what its jobs are doing."""
        key = (*reading.result.key, str(queue.get("name")), "depth")
        state = "stale" if reading.stale else self.queue_state(queue)
        part = f" {queue['role']}" if queue.get("role") in ("prioritized", "paused", "retry") else ""
        line = dot(state) + Text(f"{queue['library']} {queue.get('queue')}{part}", style="bold")
        kind = queue.get("state") or "waiting"
        if kind == "delayed":
            line.append(f"  {count(queue.get('delayed'), unknown='?')} delayed")
            line.append(f", {self.due_text(queue.get('next_due_in_s'))}", style="dim")
            return line, []
        if kind == "in_flight":
            return line + Text(f"  {count(queue.get('in_flight'), unknown='?')} in flight"), []
        if kind == "log":
            return line + Text(f"  {count(queue.get('length'))} entries, no consumer group", style="dim"), []
        at_least = "≥" if queue.get("depth_at_least") else ""
        line.append(f"  {at_least}{count(queue.get('depth'))} waiting")
        if reading.stale:
            line.append(f" {reading.staleness}", style="italic")
        line.append_text(trend(self.store.rate(key), queue.get("depth")))
        age = queue.get("oldest_age_s")
        line.append(f", oldest {format_age(age)}" if age is not None else ", oldest unknown", style="dim")
        if queue.get("in_flight"):
            line.append(f", {count(queue['in_flight'])} in flight", style="dim")
        if queue.get("delayed"):  # Celery: countdown/ETA tasks wait in the same list
            line.append(f", {count(queue['delayed'])} delayed, {self.due_text(queue.get('next_due_in_s'))}", style="dim")
        return line, self.store.values(key, last=SPARK_HISTORY)

    @staticmethod
    def due_text(due_in_s: float | None) -> str:
        if due_in_s is None:
            return "next due unknown"
        return f"next in {format_age(due_in_s)}" if due_in_s > 0 else f"overdue {format_age(-due_in_s)}"

    @staticmethod
    def shown(queue: dict[str, Any]) -> bool:
        """Delayed and in-flight rows only while they hold jobs (or their count is unknown)."""
        kind = queue.get("state") or "waiting"
        if queue.get("role") in ("prioritized", "paused"):  # BullMQ's other waiting lists
            return queue.get("depth") != 0
        held = queue.get("delayed" if kind == "delayed" else "in_flight")
        return kind in ("waiting", "log") or held != 0

    def show(self) -> None:
        lines: list[tuple[str, Text, list[float]]] = []
        states: list[str] = []
        total = 0
        stale_readings: list[Reading] = []
        for target in dict.fromkeys(key[1] for key in self.store.latest if key[0] == "redis"):
            text, server_states = self.server_line(target)
            states += server_states
            lines.append((f"srv-{target}", text, []))
            if culprit := self.culprit_line(target):
                lines.append((f"top-{target}", culprit, []))
            reading = self.store.reading(("redis", target, "queues"))
            if reading is None:
                continue
            states.append(reading.state)
            # A library's queue together: waiting, then delayed, then in flight.
            queues = sorted(reading.result.data.get("queues") or (), key=lambda q: (
                str(q.get("library") or ""), str(q.get("queue") or q.get("name")), STATE_ORDER.get(q.get("state"), 0)))
            for queue in queues:
                if (queue.get("state") or "waiting") == "waiting":  # the total counts waiting jobs only
                    total += int(queue.get("depth") or 0)
                if not self.shown(queue):
                    continue
                text, values = self.queue_line(reading, queue)
                lines.append((f"q-{target}-{queue.get('name')}", text, values))
            stale_readings += [r for r in (reading,) if r.stale]
        # One scale for every queue, so their bars compare; stated in the title.
        floor = max(SCALE_FLOOR_JOBS, self.thresholds.get("queues", "depth_warn"))
        top = scale_top((v for _, _, values in lines for v in values), floor)
        self.show_series([(key, text, values, top) for key, text, values in lines])
        self.set_scale(f"0–{count(top)} jobs" if any(values for _, _, values in lines) else "")
        self.set_empty(None if lines else self.empty_text(bool(lines)))
        self.set_summary(worst_state(states), f"{count(total)} jobs queued" if lines else "", stale_readings)
