"""The Docker probe: container state, health, restarts and resource use from one engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from probes.config import DockerTarget
from probes.docker_stats import MAX_STATS, add_stats
from probes.result import ProbeResult, Status, guarded, worst
from probes.secrets import mask_url, redact
from probes.thresholds import Thresholds

KIND = "docker"
PROBES = ("containers",)
# The labels Compose puts on every container it creates.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"

# Bounds per refresh: a host running hundreds of containers must not cost hundreds of calls.
MAX_CONTAINERS = 100
# What changes little is asked for less often than the listing (one call per refresh): a
# container's inspect data when the listing shows no change in its state or health, and the
# CPU/memory figures. A cockpit refreshing every second then makes ~2 calls a second, not
# 1 + 2 per container. A container that restarts, is unhealthy, or whose state or health
# changed is inspected at every refresh.
INSPECT_EVERY_S = 30.0
STATS_EVERY_S = 10.0
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
        self.inspected: dict[str, tuple[tuple[str, str, bool], dict[str, Any], float]] = {}
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
            # Never through a proxy from the environment (and no proxy lookup per request).
            client.api.trust_env = False
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
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    return {
        "name": (inspect.get("Name") or "").lstrip("/"),
        "service": labels.get(SERVICE_LABEL),  # None outside Compose
        "project": labels.get(PROJECT_LABEL),
        "replica": None,  # the container number, when its service has more than one container
        "_number": labels.get(NUMBER_LABEL),
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
            # Connecting (first time only) and listing in one trip to a thread.
            listing = await call(lambda: session.connect(timeout).api.containers(all=True, filters=project_filter(target)))
        except Exception:
            await call(session.forget)
            raise
        names = listed_names(listing)
        wanted = list(target.containers) or sorted(container_name(c) for c in listing)
        missing = [n for n in wanted if n not in names]
        every = list(dict.fromkeys(cid for n in wanted for cid in names.get(n, ())))
        chosen = every[:MAX_CONTAINERS]
        inspected = await _inspect(chosen, {c["Id"]: c for c in listing}, session, call)
        now = time.time()
        # A container removed between the listing and its inspection simply is not shown.
        rows = [_container_row(i, session, now) for i in inspected if i is not None]
        _number_replicas(rows)
        await add_stats(rows, session, call, deadline - loop.time() - 0.1)

    limits = thresholds.of("containers")
    graded = [(row, *_grade(row, limits)) for row in rows]
    problems = [f"{row['name']} {why}" for row, status, why in graded if status is not Status.OK]
    problems += [f"{name} missing" for name in missing]
    status = worst([s for _, s, _ in graded] + [Status.FAIL] * bool(missing))
    for row, row_status, why in graded:
        row.pop("_full_id")
        row.pop("_number")
        # The verdict per container, so a view shows this judgement rather than its own.
        row["status"], row["why"] = row_status.value, why
    data = {
        "engine_version": session.engine.get("Version"),
        "api_version": session.engine.get("ApiVersion"),
        "base_url": _where(target.base_url),
        "compose_project": target.compose_project or None,
        "containers": rows,
        "missing": missing,
        "truncated": len(every) > MAX_CONTAINERS,
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


def project_filter(target: DockerTarget) -> dict[str, str] | None:
    """The engine-side filter for a target's Compose project: other containers are never listed."""
    return {"label": f"{PROJECT_LABEL}={target.compose_project}"} if target.compose_project else None


def listed_names(listing: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each container name, and each Compose service name, -> its container ids: a target's
    `containers` may name either (a container's own name wins over a service's)."""
    found: dict[str, list[str]] = {}
    for entry in listing:
        if service := (entry.get("Labels") or {}).get(SERVICE_LABEL):
            found.setdefault(service, []).append(entry["Id"])
    for entry in listing:
        found[container_name(entry)] = [entry["Id"]]
    return found


def container_name(entry: dict[str, Any]) -> str:
    return (entry.get("Names") or ["/"])[0].lstrip("/")


def _number_replicas(rows: list[dict[str, Any]]) -> None:
    """A service with several containers (`deploy.replicas`, `--scale`) shows each one's number."""
    per_service: dict[tuple[Any, Any], int] = {}
    for row in rows:
        if row["service"]:
            per_service[(row["project"], row["service"])] = per_service.get((row["project"], row["service"]), 0) + 1
    for row in rows:
        if per_service.get((row["project"], row["service"]), 0) > 1:
            row["replica"] = row["_number"]


def _listed_as(entry: dict[str, Any]) -> tuple[str, str, bool]:
    """State, health and whether it started within the last minute, as the listing says them
    (`Up 5 minutes (healthy)`, `Up 3 seconds (health: starting)`). A container that
    restarted between two listings is young again: that is a change too."""
    status = str(entry.get("Status") or "")
    health = status[status.rfind("(") + 1 : -1] if status.endswith(")") and "(" in status else ""
    young = status.startswith("Up") and ("second" in status or "Less than" in status)
    return str(entry.get("State") or ""), health.removeprefix("health: "), young


async def _inspect(ids: list[str], listed: dict[str, dict[str, Any]], session: Session, call: Any) -> list[dict[str, Any] | None]:
    """Inspect data per container: fresh when the listing shows a change in its state or
    health or a new start, while it restarts or is not healthy, or when the last inspection
    is `inspect_every_s` old; else the last one (inspect answers are large: at one a second
    per container they cost more than the rest of the probe)."""
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
