"""Runbook Redis and Docker commands against a config target, each re-checked before it runs."""

from __future__ import annotations

import asyncio
from typing import Any

from probes.config import DockerTarget, Environment, HttpTarget, PostgresTarget, RedisTarget
from probes.secrets import mask_url
from runbooks.classify import MAX_LOG_LINES, classify_docker, classify_redis, split_command

KINDS = {PostgresTarget: "postgres", RedisTarget: "redis", HttpTarget: "http", DockerTarget: "docker"}


def find_target(env: Environment, name: str, kind: str) -> tuple[str, Any]:
    """(kind, target) of a config target; LookupError naming the environment's targets."""
    candidates: list[Any] = [*env.postgres, *env.redis, *env.http, *([env.docker] if env.docker else [])]
    target = next((t for t in candidates if t.name == name), None)
    if target is None:
        known = ", ".join(env.target_names()) or "none"
        raise LookupError(f"{name}: no such target in environment {env.name!r} (known: {known})")
    found = KINDS[type(target)]
    if kind and found != kind:
        raise LookupError(f"{name}: is a {found} target, this step needs a {kind} target")
    return found, target


def target_address(target: Any) -> str:
    if isinstance(target, PostgresTarget):
        return target.address
    if isinstance(target, RedisTarget):
        return target.display_url
    if isinstance(target, HttpTarget):
        return mask_url(target.url)
    return mask_url(target.base_url)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


async def redis_call(target: RedisTarget, words: tuple[str, ...], command: str, timeout: float, *, read: bool = True) -> dict[str, Any]:
    """One Redis command; a read is refused here unless it still classifies as a read."""
    words = tuple(split_command(command))  # the filled command, not the template
    verdict = classify_redis(list(words))
    if verdict.verdict == "refused" or (read and not verdict.read_only):
        raise PermissionError(f"Redis command refused: {verdict.reason}")
    import redis.asyncio as aioredis

    client = aioredis.from_url(target.url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)
    try:
        async with asyncio.timeout(timeout):
            reply = _jsonable(await client.execute_command(*words))
    finally:
        await client.aclose()
    value = reply if isinstance(reply, (int, float, str)) and not isinstance(reply, bool) else None
    data = reply if isinstance(reply, dict) else {"reply": reply}
    shown = f"{len(reply)} field(s)" if isinstance(reply, dict) and len(reply) > 3 else str(reply)
    return {"status": "ok", "value": value, "data": data, "summary": f"{' '.join(words[:2])}: {shown[:120]}"}


def unlisted_container(target: DockerTarget, name: str) -> str | None:
    """Why `name` is out of bounds for `target`, or None. A target that lists its containers
    covers those only: its runbooks neither read nor act on the engine's other containers
    (another team's, or the engine's own helpers)."""
    if target.containers and name not in target.containers:
        return f"container {name} is not one of {target.name}'s containers ({', '.join(target.containers)})"
    return None


def _docker_words(command: str) -> list[str]:
    words = split_command(command)
    return words[1:] if words[:1] == ["docker"] else words


async def docker_call(env: Environment, target: DockerTarget, words: tuple[str, ...], command: str, timeout: float, *, read: bool) -> dict[str, Any]:
    """A docker read (ps / inspect / logs) or, with read=False, an action (restart, stop, ...)."""
    parts = _docker_words(command)
    verdict = classify_docker(parts)
    if verdict.verdict == "refused" or (read and not verdict.read_only) or (not read and verdict.read_only):
        raise PermissionError(f"docker command refused: {verdict.reason}")
    verb = parts[0]
    if len(parts) > 1 and (outside := unlisted_container(target, parts[1])):
        raise PermissionError(outside)
    if verb in ("ps", "inspect"):
        from probes import docker as docker_probe

        res = await docker_probe.containers(target, env.thresholds, timeout=timeout)
        base = {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary}
        if verb == "ps" or res.status == "error":
            return base
        row = next((c for c in res.data.get("containers", []) if c.get("name") == parts[1]), None)
        if row is None:
            raise LookupError(f"{target.name}: no container named {parts[1]!r}")
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        summary = f"{row['name']}: {row.get('state')}, health {row.get('health')}, {row.get('restart_count')} restart(s)"
        return {"status": "ok", "value": row.get("restart_count"), "data": row, "summary": summary}
    return await asyncio.wait_for(asyncio.to_thread(_docker_sync, target, parts, timeout), timeout + 1.0)


def _docker_sync(target: DockerTarget, parts: list[str], timeout: float) -> dict[str, Any]:
    import docker

    client = docker.DockerClient(base_url=target.base_url, timeout=timeout)
    try:
        container = client.containers.get(parts[1])
        if parts[0] == "logs":
            tail = int(parts[3]) if len(parts) == 4 else 100
            text = container.logs(tail=min(tail, MAX_LOG_LINES)).decode("utf-8", "replace")
            lines = text.splitlines()
            return {"status": "ok", "value": len(lines), "data": {"lines": lines},
                    "summary": f"{len(lines)} log line(s); last: {lines[-1][:100] if lines else '-'}"}
        getattr(container, parts[0])()
        return {"status": "ok", "value": None, "data": {"container": parts[1], "done": parts[0]},
                "summary": f"{parts[0]} {parts[1]}"}
    finally:
        client.close()
