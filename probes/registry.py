"""Which probes exist for which kind of target, and running all of an environment's at once.

Every backend module (`probes/postgres.py`, `redis.py`, `http.py`, `docker.py`, `dns.py`, `tcp.py`) offers:

- `KIND`: "postgres" / "redis" / "http" / "docker" / "dns" / "tcp";
- `PROBES`: the probe names it can produce;
- `async collect(target, thresholds, *, timeout, session=None) -> list[ProbeResult]`:
  every probe of that target in as few round trips as the backend allows; never raises;
- one `async NAME(target, thresholds, *, timeout=...) -> ProbeResult` per probe name;
- `Session(target)`: optional long-lived connection state handed back to `collect` by the
  cockpit so it does not reconnect every refresh; `await session.aclose()` releases it.

Backends are imported lazily: `warroom check` against HTTP only never imports psycopg.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any

from probes.config import Environment
from probes.result import ProbeResult

BACKENDS = {
    "postgres": "probes.postgres",
    "redis": "probes.redis",
    "http": "probes.http",
    "docker": "probes.docker",
    "dns": "probes.dns",
    "tcp": "probes.tcp",
    "prometheus": "probes.prometheus",
    "alertmanager": "probes.alertmanager",
}


def backend(kind: str) -> ModuleType:
    return importlib.import_module(BACKENDS[kind])


def targets(env: Environment) -> list[tuple[str, Any]]:
    """(kind, target) for every target of an environment, in display order."""
    pairs: list[tuple[str, Any]] = [("http", t) for t in env.http]
    pairs += [("postgres", t) for t in env.postgres]
    pairs += [("redis", t) for t in env.redis]
    pairs += [("dns", t) for t in env.dns]
    pairs += [("tcp", t) for t in env.tcp]
    # Servers that watch the fleet (probes/config_sources.py), read over their HTTP APIs.
    pairs += [("prometheus", t) for t in env.prometheus]
    pairs += [("alertmanager", t) for t in env.alertmanager]
    if env.docker:
        pairs.append(("docker", env.docker))
    return pairs


async def collect_target(kind: str, target: Any, env: Environment, *, timeout: float | None = None, session: Any = None) -> list[ProbeResult]:
    module = backend(kind)
    return await module.collect(target, env.thresholds, timeout=timeout or env.timeout_s, session=session)


async def collect_all(env: Environment, *, timeout: float | None = None) -> list[ProbeResult]:
    """Every probe of every target once, concurrently; bounded by the timeout."""
    batches = await asyncio.gather(
        *(collect_target(kind, target, env, timeout=timeout) for kind, target in targets(env))
    )
    return [result for batch in batches for result in batch]
