"""The Docker probe: container state, health, restarts and resource use from one engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from probes.config import DockerTarget
from probes.result import ProbeResult, Status, guarded, worst
from probes.secrets import mask_url, redact
from probes.thresholds import Thresholds

KIND = "docker"
PROBES = ("containers",)

# Bounds per refresh: a host running hundreds of containers must not cost hundreds of calls.
MAX_CONTAINERS = 100
MAX_STATS = 24
# What changes little is asked for less often than the listing (one call per refresh): a
# container's inspect data when the listing shows no change in its state or health, and the
# CPU/memory figures. A cockpit refreshing every second then makes ~2 calls a second, not
# 1 + 2 per container. A container that restarts, is unhealthy, or whose state or health
# changed is inspected at every refresh.
INSPECT_EVERY_S = 5.0
STATS_EVERY_S = 5.0
# The engine's stats collector samples once a second; after the first stats answer the others
# may take this much longer (see _add_stats).
COLLECTOR_TICK_S = 1.0
STATS_GRACE_S = 0.3
NS = 1_000_000_000
# guarded() is only the backstop: our own deadline fires first with a docker-specific message.
_BACKSTOP_S = 0.4
# The SDK is synchronous. Its calls run in our own threads so a hung engine can never starve
# the event loop's default executor (which other backends and Textual share). Every stats
# request holds a thread and a connection until the collector's tick: room for all of them.
_WORKERS = MAX_STATS + 8
_shared_pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="warroom-docker")

T = TypeVar("T")


class Session:
    """A DockerClient reused across refreshes, plus what CPU% and exit codes need from the past."""

    def __init__(self, target: DockerTarget) -> None:
        self.target = target
        self.client: Any = None
        self.engine: dict[str, Any] = {}
        # container id -> (cpu total_usage ns, system_cpu_usage ns) of the previous refresh
        self.cpu_samples: dict[str, tuple[int, int]] = {}
        # container id -> last non-zero exit code; the engine resets ExitCode when it restarts one
        self.exit_codes: dict[str, int] = {}
        # container id -> (what the listing said, inspect data, monotonic time it was fetched)
        self.inspected: dict[str, tuple[tuple[str, str], dict[str, Any], float]] = {}
        # container id -> the stats figures of the last stats round, and when that round was
        self.figures: dict[str, dict[str, Any]] = {}
        self.stats_at: float | None = None
        self.inspect_every_s = INSPECT_EVERY_S
        self.stats_every_s = STATS_EVERY_S

    def connect(self, timeout: float) -> Any:
        """The client, created on first use (in a worker thread: creating it asks the engine)."""
        if self.client is None:
            import docker

            client = docker.DockerClient(base_url=self.target.base_url, timeout=timeout, max_pool_size=_WORKERS)
            info = client.api.version()
            self.client, self.engine = client, info
        # requests takes float timeouts; the client's attribute applies to every later call.
        self.client.api.timeout = timeout
        return self.client

    def forget(self) -> None:
        """Drop the client after an error so the next refresh reconnects (engine restarted?)."""
        client, self.client = self.client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(_shared_pool, client.close)


def _where(base_url: str) -> str:
    try:
        return mask_url(base_url)
    except ValueError:  # not even a URL ("http://[bad"): still never show a password
        return redact(base_url)


def describe_error(exc: BaseException, base_url: str) -> str:
    """An operator message for the engine failures people meet: no socket, no permission, hung."""
    text = f"{type(exc).__name__}: {exc}"
    where = _where(base_url)
    if isinstance(exc, EngineTimeout):
        return str(exc)
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return f"permission denied on {where} (is this user in the docker group?)"
    if any(word in text for word in ("ReadTimeout", "timed out", "Timeout")):
        return f"engine at {where} did not answer in time (is dockerd hung?)"
    if any(
        word in text
        for word in ("No such file", "Connection refused", "ConnectionError", "Connection aborted", "FileNotFound", "Error while fetching server API version")
    ):
        return f"engine not reachable at {where} (is dockerd running?)"
    if any(word in text for word in ("URL scheme", "Invalid bind address", "URLSchemeUnknown", "Invalid IPv6 URL", "InvalidURL")):
        return f"cannot use {where} as a Docker engine URL (expected unix:// or tcp://)"
    return text.splitlines()[0][:200]


def _parse_time(value: str | None) -> float | None:
    """Docker timestamps have nanoseconds; "0001-01-01..." means never."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())[:6]
    stamp = f"{head}.{digits or '0'}+00:00"
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


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


def _container_row(inspect: dict[str, Any], session: Session, now: float) -> dict[str, Any]:
    state = inspect.get("State") or {}
    cid = inspect.get("Id", "")
    running = bool(state.get("Running"))
    started = _parse_time(state.get("StartedAt"))
    finished = _parse_time(state.get("FinishedAt"))
    exit_code: int | None = state.get("ExitCode")
    if exit_code:
        session.exit_codes[cid] = exit_code
    elif running and inspect.get("RestartCount"):
        # Restarted by its policy: the engine shows 0 while it runs again, but the code it last
        # exited with is what matters (known when a previous refresh of this session saw it).
        exit_code = session.exit_codes.get(cid)
    elif finished is None:
        exit_code = None  # never exited
    status = state.get("Status") or "unknown"
    return {
        "name": (inspect.get("Name") or "").lstrip("/"),
        "id": cid[:12],
        "image": (inspect.get("Config") or {}).get("Image", ""),
        "state": status,
        "health": (state.get("Health") or {}).get("Status"),
        "restart_count": int(inspect.get("RestartCount") or 0),
        "exit_code": exit_code,
        "oom_killed": bool(state.get("OOMKilled")),
        "uptime_s": round(max(0.0, now - started), 1) if running and started else None,
        "cpu_pct": None,
        "mem_bytes": None,
        "mem_limit": None,
        "mem_pct": None,
        "cpu_window_s": None,
        "_full_id": cid,
    }


def _restarts(row: dict[str, Any]) -> str:
    code = row["exit_code"]
    return f"restarts {row['restart_count']}" + (f", last exit {code}" if code is not None else "")


def _grade(row: dict[str, Any], limits: dict[str, float]) -> tuple[Status, str]:
    """Status of one container and the few words saying why."""
    restarts, state, health = row["restart_count"], row["state"], row["health"]
    recent = row["uptime_s"] is None or row["uptime_s"] < limits["restart_window_s"]
    if row["oom_killed"]:
        return Status.FAIL, "OOM-killed"
    if state == "restarting":
        return Status.FAIL, f"restarting ({_restarts(row)})"
    if health == "unhealthy":
        return Status.FAIL, "unhealthy"
    if state in ("exited", "dead") and row["exit_code"]:
        return Status.FAIL, f"{state} with code {row['exit_code']}"
    if restarts >= limits["restarts_fail"] and recent:
        return Status.FAIL, f"crash-looping ({_restarts(row)})"
    if restarts >= limits["restarts_warn"]:
        return Status.WARN, f"restarted {restarts}x"
    if health == "starting" or state == "paused":
        return Status.WARN, health if health == "starting" else "paused"
    if row["cpu_pct"] is not None and row["cpu_pct"] >= limits["cpu_pct_warn"]:
        return Status.WARN, f"CPU {row['cpu_pct']:.0f}%"
    if row["mem_pct"] is not None and row["mem_pct"] >= limits["mem_pct_warn"]:
        return Status.WARN, f"memory {row['mem_pct']:.0f}% of limit"
    return Status.OK, ""


async def _read(target: DockerTarget, thresholds: Thresholds, session: Session, timeout: float) -> list[ProbeResult]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        return loop.run_in_executor(_shared_pool, lambda: fn(*args, **kwargs))

    async with asyncio.timeout(timeout):
        try:
            client = await call(session.connect, timeout)
            api = client.api
            listing = await call(api.containers, all=True)
        except Exception:
            await call(session.forget)
            raise
        names = {(c.get("Names") or ["/"])[0].lstrip("/"): c["Id"] for c in listing}
        wanted = list(target.containers) or sorted(names)
        missing = [n for n in wanted if n not in names]
        chosen = [names[n] for n in wanted if n in names][:MAX_CONTAINERS]
        inspected = await _inspect(chosen, {c["Id"]: c for c in listing}, session, call)
        now = time.time()
        # A container removed between the listing and its inspection simply is not shown.
        rows = [_container_row(i, session, now) for i in inspected if i is not None]
        await _add_stats(rows, session, call, deadline - loop.time() - 0.1)

    limits = thresholds.of("containers")
    graded = [(row, *_grade(row, limits)) for row in rows]
    problems = [f"{row['name']} {why}" for row, status, why in graded if status is not Status.OK]
    problems += [f"{name} missing" for name in missing]
    status = worst([s for _, s, _ in graded] + [Status.FAIL] * bool(missing))
    for row, row_status, why in graded:
        row.pop("_full_id")
        # The verdict per container, so a view shows this judgement rather than its own.
        row["status"], row["why"] = row_status.value, why
    data = {
        "engine_version": session.engine.get("Version"),
        "api_version": session.engine.get("ApiVersion"),
        "base_url": _where(target.base_url),
        "containers": rows,
        "missing": missing,
        "truncated": len(wanted) - len(missing) > MAX_CONTAINERS,
    }
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        summary = f"{target.name}: " + "; ".join(problems[:3]) + more
    else:
        states: dict[str, int] = {}
        for r in rows:
            states[r["state"]] = states.get(r["state"], 0) + 1
        healthy = sum(r["health"] == "healthy" for r in rows)
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: kv[0] != "running"))
        checked = f" ({healthy} passing health checks)" if healthy else ""
        summary = f"{target.name}: {counts or 'no containers'}{checked}"
    value = float(len(problems))
    return [ProbeResult(target.name, KIND, "containers", status, summary, value=value, data=data)]


def _listed_as(entry: dict[str, Any]) -> tuple[str, str]:
    """State and health as the listing gives them (`Up 5 minutes (healthy)` -> healthy)."""
    status = str(entry.get("Status") or "")
    health = status[status.rfind("(") + 1 : -1] if status.endswith(")") and "(" in status else ""
    return str(entry.get("State") or ""), health.removeprefix("health: ")


async def _inspect(ids: list[str], listed: dict[str, dict[str, Any]], session: Session, call: Any) -> list[dict[str, Any] | None]:
    """Inspect data per container: fresh when the listing shows a change in its state or
    health, while it restarts or is not healthy, or when the last inspection is
    `inspect_every_s` old; else the last one. A restart too quick for the listing to catch
    shows within `inspect_every_s`."""
    clock = time.monotonic()
    seen = {cid: _listed_as(listed.get(cid) or {}) for cid in ids}
    stale = [
        cid for cid in ids
        if (cached := session.inspected.get(cid)) is None
        or cached[0] != seen[cid]
        or seen[cid][0] == "restarting"
        or seen[cid][1] not in ("", "healthy")
        or clock - cached[2] >= session.inspect_every_s
    ]
    fetched = await asyncio.gather(*(call(session.client.api.inspect_container, cid) for cid in stale), return_exceptions=True)
    for cid, found in zip(stale, fetched, strict=True):
        if isinstance(found, dict):
            session.inspected[cid] = (seen[cid], found, clock)
        else:
            session.inspected.pop(cid, None)  # removed meanwhile (or the engine failed it)
    for cid in [c for c in session.inspected if c not in listed]:
        del session.inspected[cid]
    return [session.inspected[cid][1] if cid in session.inspected else None for cid in ids]


async def _add_stats(rows: list[dict[str, Any]], session: Session, call: Any, budget: float) -> None:
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


async def containers(
    target: DockerTarget,
    thresholds: Thresholds | None = None,
    *,
    timeout: float = 2.0,
    session: Session | None = None,
) -> ProbeResult:
    """State, health, restarts and resource use of the engine's containers; never raises."""
    thresholds = thresholds or Thresholds()
    own = session is None
    session = session or Session(target)
    try:
        results = await guarded(
            target.name,
            KIND,
            PROBES,
            _timed(_read(target, thresholds, session, timeout), target, timeout),
            timeout=timeout + _BACKSTOP_S,
            describe_error=lambda exc: describe_error(exc, target.base_url),
        )
    finally:
        if own:
            await session.aclose()
    return results[0]


class EngineTimeout(Exception):
    """Our own deadline passed; the message names the engine (guarded() would say less)."""


async def _timed(work: Any, target: DockerTarget, timeout: float) -> list[ProbeResult]:
    """Our own deadline turns into a message naming the engine, before guarded() gives up."""
    try:
        return await work
    except TimeoutError:
        raise EngineTimeout(f"engine at {_where(target.base_url)} did not answer within {timeout:g}s (is dockerd hung?)") from None


async def collect(
    target: DockerTarget,
    thresholds: Thresholds,
    *,
    timeout: float = 2.0,
    session: Session | None = None,
) -> list[ProbeResult]:
    """Every probe of one engine (there is one: "containers"); never raises."""
    return [await containers(target, thresholds, timeout=timeout, session=session)]
