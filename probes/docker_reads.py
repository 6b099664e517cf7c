"""Docker reads a runbook step asks for: which container a name means, its settings (secrets masked), its bounded logs."""

from __future__ import annotations

import shlex
import time
from collections import deque
from typing import Any

from probes.config import DockerTarget
from probes.docker import (
    NUMBER_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    container_name,
    listed_names,
    project_filter,
)
from probes.secrets import MASK, redact

# What one `logs` step keeps: the newest lines, each cut to MAX_LINE_CHARS, at most
# MAX_LOG_BYTES in all. The engine sends at most MAX_READ_BYTES before we stop listening: a
# container that wrote one 2 GB line must not fill warroom's memory or its journal.
MAX_LOG_BYTES = 256 * 1024
MAX_LINE_CHARS = 2000
MAX_READ_BYTES = 16 * 1024 * 1024
MAX_HEALTH_LOG = 3  # the last health-check runs shown by inspect
MAX_HEALTH_OUTPUT = 300
_CUT = " [line cut]"


def resolve(client: Any, target: DockerTarget, name: str) -> str:
    """The container a step's NAME means. Without a Compose project: NAME itself (the engine
    says whether it exists). With one: a container of that project, by its name or by its
    Compose service's (`api` for ghostworks-api-1); anything outside the project is refused."""
    if not target.compose_project:
        return name
    listing = client.api.containers(all=True, filters=project_filter(target))
    ids = listed_names(listing).get(name, [])
    by_id = {c["Id"]: container_name(c) for c in listing}
    if len(ids) == 1:
        return by_id[ids[0]]
    project = target.compose_project
    if ids:
        names = ", ".join(sorted(by_id[i] for i in ids))
        raise LookupError(f"{name}: service of Compose project {project} with {len(ids)} containers ({names}); name one of them")
    services = sorted({s for c in listing if (s := (c.get("Labels") or {}).get(SERVICE_LABEL))})
    raise LookupError(f"{name}: no container or service of that name in Compose project {project} "
                      f"(its services: {', '.join(services) or 'none: is the project up?'})")


def _seconds(ns: Any) -> float | None:
    return round(ns / 1e9, 3) if isinstance(ns, int) and ns > 0 else None


def _health_check(config: dict[str, Any]) -> dict[str, Any] | None:
    """The health check as Compose writes it: `curl -f http://localhost/health`, its timings."""
    check = config.get("Healthcheck") or {}
    test = [str(t) for t in check.get("Test") or []]
    if not test or test[0] == "NONE":
        return None
    form, args = (test[0], test[1:]) if test[0] in ("CMD", "CMD-SHELL") else ("CMD", test)
    command = args[0] if form == "CMD-SHELL" and args else shlex.join(args)
    return {"command": redact(command), "form": "shell" if form == "CMD-SHELL" else "exec",
            "interval_s": _seconds(check.get("Interval")), "timeout_s": _seconds(check.get("Timeout")),
            "retries": check.get("Retries"), "start_period_s": _seconds(check.get("StartPeriod"))}


def settings(inspect: dict[str, Any]) -> dict[str, Any]:
    """What `docker inspect` says about how a container is set up, for an operator: environment
    variable names (every value masked: they hold the passwords), restart policy, health check
    and its last runs, mounts, networks, Compose labels. Nothing else of the inspect data."""
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    policy = host.get("RestartPolicy") or {}
    labels = config.get("Labels") or {}
    networks = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
    health_log = ((inspect.get("State") or {}).get("Health") or {}).get("Log") or []
    return {
        "env": {str(entry).partition("=")[0]: MASK for entry in config.get("Env") or []},
        "restart_policy": {"name": policy.get("Name") or "no", "max_retries": policy.get("MaximumRetryCount") or 0},
        "health_check": _health_check(config),
        "health_log": [
            {"exit_code": run.get("ExitCode"), "output": redact(str(run.get("Output") or "").strip())[:MAX_HEALTH_OUTPUT]}
            for run in health_log[-MAX_HEALTH_LOG:]
        ],
        "mounts": [
            {"type": m.get("Type"), "source": m.get("Name") or m.get("Source"), "destination": m.get("Destination"),
             "mode": "rw" if m.get("RW") else "ro"}
            for m in inspect.get("Mounts") or []
        ],
        "network_mode": host.get("NetworkMode"),
        "networks": [{"name": net, "ip": (info or {}).get("IPAddress") or None, "aliases": (info or {}).get("Aliases") or []}
                     for net, info in networks.items()],
        "compose": {"project": labels[PROJECT_LABEL], "service": labels.get(SERVICE_LABEL), "number": labels.get(NUMBER_LABEL),
                    "working_dir": labels.get(f"{PROJECT_LABEL}.working_dir")} if PROJECT_LABEL in labels else None,
    }


def settings_summary(name: str, row: dict[str, Any], found: dict[str, Any]) -> str:
    """`api: running, health healthy, 0 restart(s); restart always; check `curl -f ...`; 3 env vars; ...`."""
    check = found["health_check"]
    bits = [f"{name}: {row.get('state')}, health {row.get('health')}, {row.get('restart_count')} restart(s)",
            f"restart {found['restart_policy']['name']}",
            f"check `{check['command'][:60]}`" if check else "no health check",
            f"{len(found['env'])} env var(s)", f"{len(found['mounts'])} mount(s)",
            "networks " + (", ".join(n["name"] for n in found["networks"]) or str(found["network_mode"] or "none"))]
    return "; ".join(bits)


def _line(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text[:MAX_LINE_CHARS] + _CUT if len(text) > MAX_LINE_CHARS else text


def read_logs(container: Any, lines: int, since_s: int | None, deadline: float) -> dict[str, Any]:
    """A container's last `lines` lines (of the last `since_s` seconds), bounded in bytes.

    The engine streams them; we keep the newest lines within MAX_LOG_BYTES and stop listening
    after MAX_READ_BYTES or at `deadline` (monotonic), saying so, never hanging on a big log."""
    since = time.time() - since_s if since_s else None
    stream = container.logs(stream=True, follow=False, tail=lines, since=since)
    kept: deque[str] = deque(maxlen=max(lines, 1))
    partial, read, stopped = b"", 0, ""
    try:
        for chunk in stream:
            read += len(chunk)
            partial += chunk
            *complete, partial = partial.split(b"\n")
            kept.extend(_line(c) for c in complete)
            if len(partial) > MAX_LINE_CHARS * 4:  # a line with no end yet: keep its start only
                partial = partial[: MAX_LINE_CHARS * 4]
            if read >= MAX_READ_BYTES:
                stopped = f"stopped reading after {MAX_READ_BYTES // 1024} KB"
                break
            if time.monotonic() > deadline:
                stopped = "stopped reading at the step's timeout"
                break
    finally:
        stream.close()
    if partial:
        kept.append(_line(partial))
    out = list(kept)
    size, cut = sum(len(line) + 1 for line in out), 0
    while out and size > MAX_LOG_BYTES:
        size -= len(out.pop(0)) + 1
        cut += 1
    return {"lines": out, "tail": lines, "since_s": since_s, "dropped_for_size": cut, "stopped": stopped or None,
            "bytes_read": read}


def logs_summary(name: str, data: dict[str, Any]) -> str:
    lines = data["lines"]
    window = f" of the last {_window(data['since_s'])}" if data["since_s"] else ""
    bits = [f"{name}: {len(lines)} log line(s){window}"]
    if data["dropped_for_size"]:
        bits.append(f"{data['dropped_for_size']} older line(s) left out (over {MAX_LOG_BYTES // 1024} KB)")
    if data["stopped"]:
        bits.append(data["stopped"])
    bits.append(f"last: {lines[-1][:100]}" if lines else "last: -")
    return "; ".join(bits)


def _window(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
