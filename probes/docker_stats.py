"""CPU% and memory of running containers for the Docker probe, the way `docker stats` counts them."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.docker import Session

# At most this many containers get figures per round: each stats request holds a thread
# and a connection until the engine's collector ticks.
MAX_STATS = 24
# The engine's stats collector samples once a second; after the first stats answer the others
# may take this much longer (see _stats_round).
COLLECTOR_TICK_S = 1.0
STATS_GRACE_S = 0.3
NS = 1_000_000_000


def _memory(stats: dict[str, Any]) -> tuple[int | None, int | None]:
    """Used bytes the way `docker stats` counts them (page cache that can be dropped excluded)."""
    mem = stats.get("memory_stats") or {}
    usage, limit = mem.get("usage"), mem.get("limit")
    if usage is None:
        return None, limit
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))  # cgroup v1 / v2
    if 0 < cache < usage:
        usage -= cache
    return usage, limit


def _cpu_sample(stats: dict[str, Any]) -> tuple[int, int, int] | None:
    cpu = stats.get("cpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    system = cpu.get("system_cpu_usage")
    if total is None or not system:
        return None
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return total, system, cpus


def _cpu_pct(previous: tuple[int, int] | None, now: tuple[int, int, int] | None) -> float | None:
    """CPU% as `docker stats` computes it: container time over host time, times online CPUs."""
    if previous is None or now is None:
        return None
    d_cpu, d_sys = now[0] - previous[0], now[1] - previous[1]
    if d_sys <= 0 or d_cpu < 0:
        return None
    return round(d_cpu / d_sys * now[2] * 100.0, 2)


async def add_stats(rows: list[dict[str, Any]], session: Session, call: Any, budget: float) -> None:
    """Figures from the last stats round while it is recent (`stats_every_s`), else a new round."""
    clock = time.monotonic()
    if session.stats_at is not None and clock - session.stats_at < session.stats_every_s:
        for row in rows:
            if row["state"] == "running":
                row.update(session.figures.get(row["_full_id"], {}))
        return
    await _stats_round(rows, session, call, budget)
    session.stats_at = clock
    session.figures = {
        r["_full_id"]: {k: r[k] for k in ("cpu_pct", "mem_bytes", "mem_limit", "mem_pct", "cpu_window_s")}
        for r in rows if r["cpu_pct"] is not None or r["mem_bytes"] is not None
    }


async def _stats_round(rows: list[dict[str, Any]], session: Session, call: Any, budget: float) -> None:
    """CPU% and memory of running containers, concurrently; what does not fit the budget stays None.

    The engine's stats collector publishes once a second to every waiting request, so one round
    costs up to a second however many containers there are. One-shot requests (API 1.41) skip
    the engine's second sample; CPU% then compares with this session's previous refresh, or on
    the first reading with the container's whole run (cpu_window_s says which).
    """
    running = [r for r in rows if r["state"] == "running"][:MAX_STATS]
    if not running or budget <= 0:
        return
    api = session.client.api
    from docker.utils import version_gte

    one_shot = version_gte(api.api_version, "1.41")
    kwargs = {"stream": False, "one_shot": True} if one_shot else {"stream": False}
    tasks = {asyncio.ensure_future(call(api.stats, r["_full_id"], **kwargs)): r for r in running}
    loop = asyncio.get_running_loop()
    started = loop.time()
    done, pending = await asyncio.wait(tasks, timeout=budget, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        # Usually the rest come with the same tick. But a first answer that came at once woke an
        # idle collector, and requests a moment later missed that tick: they need the next one.
        # A container about to exit is held back until it is gone: it must not hold the others.
        first_s = loop.time() - started
        grace = STATS_GRACE_S if first_s > STATS_GRACE_S else COLLECTOR_TICK_S + STATS_GRACE_S
        more, pending = await asyncio.wait(pending, timeout=max(0.0, min(grace, budget - first_s)))
        done |= more
    for task in pending:
        task.cancel()
    for task in done:
        row = tasks[task]
        if task.exception() is not None:
            continue  # stopped meanwhile: no figures this time
        _apply_stats(row, task.result(), session, one_shot)
    # Containers that are gone do not keep their samples forever.
    alive = {r["_full_id"] for r in rows}
    for cid in [c for c in session.cpu_samples if c not in alive]:
        del session.cpu_samples[cid]


def _apply_stats(row: dict[str, Any], stats: dict[str, Any], session: Session, one_shot: bool) -> None:
    cid = row["_full_id"]
    cpu = _cpu_sample(stats)
    if one_shot:
        previous = session.cpu_samples.get(cid)
        row["cpu_pct"] = _cpu_pct(previous, cpu)
        if row["cpu_pct"] is not None and previous and cpu:
            row["cpu_window_s"] = round((cpu[1] - previous[1]) / NS / cpu[2], 2)
        elif cpu and row["uptime_s"]:
            # First reading (or the container restarted): its average since it started.
            row["cpu_pct"] = round(cpu[0] / (row["uptime_s"] * NS) * 100.0, 2)
            row["cpu_window_s"] = row["uptime_s"]
    else:
        pre = stats.get("precpu_stats") or {}
        total, system = (pre.get("cpu_usage") or {}).get("total_usage"), pre.get("system_cpu_usage")
        row["cpu_pct"] = _cpu_pct((total, system) if total is not None and system else None, cpu)
        row["cpu_window_s"] = 1.0  # the engine's own two samples, a collector tick apart
    if cpu:
        session.cpu_samples[cid] = cpu[:2]
    used, limit = _memory(stats)
    row["mem_bytes"], row["mem_limit"] = used, limit
    if used is not None and limit:
        row["mem_pct"] = round(used / limit * 100.0, 2)
