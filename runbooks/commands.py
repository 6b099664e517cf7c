"""Runbook Redis and Docker commands against a config target, each re-checked before it runs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from probes.config import DockerTarget, Environment, HttpTarget, PostgresTarget, RedisTarget
from probes.config_net import DnsTarget, TcpTarget
from probes.config_sources import AlertmanagerTarget, PrometheusTarget
from probes.secrets import MASK, mask_url
from runbooks.classify import (
    MAX_RANGE,
    REDIS_SIZED,
    classify_docker,
    classify_redis,
    docker_log_options,
    split_command,
)
from runbooks.reply_text import reply_text

KINDS = {PostgresTarget: "postgres", RedisTarget: "redis", HttpTarget: "http", DockerTarget: "docker"}
KINDS.update({PrometheusTarget: "prometheus", AlertmanagerTarget: "alertmanager"})
KINDS.update({DnsTarget: "dns", TcpTarget: "tcp"})


def find_target(env: Environment, name: str, kind: str) -> tuple[str, Any]:
    """(kind, target) of a config target; LookupError naming the environment's targets."""
    candidates: list[Any] = [*env.postgres, *env.redis, *env.http, *([env.docker] if env.docker else [])]
    candidates += [*env.prometheus, *env.alertmanager]
    candidates += [*env.dns, *env.tcp]
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
        # host:port/db, as PostgreSQL's address: no user. Reads and actions connect as different
        # users (url, action_url); naming the read user in an action's confirmation misleads.
        parts = urlsplit(target.url)
        return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
    if isinstance(target, HttpTarget | PrometheusTarget | AlertmanagerTarget):
        return mask_url(target.url)
    if isinstance(target, DnsTarget):
        return f"{target.host} {target.type} @ {target.display_server}"
    if isinstance(target, TcpTarget):
        return target.address
    if isinstance(target, DockerTarget) and target.compose_project:
        return f"{mask_url(target.base_url)}, Compose project {target.compose_project}"
    return mask_url(target.base_url)


# --- Redis replies: the second lock after the classifier's bounds ---------------------------
# SCAN's COUNT is a hint (a small set or hash comes back whole), HGETALL and CLIENT LIST are as
# big as the data: every reply keeps at most MAX_REPLY_ITEMS items per list / mapping / line
# list, and says how many it left out. Secret CONFIG parameters are masked before anything
# (summary, data, journal) sees them.

MAX_REPLY_ITEMS = MAX_RANGE
MAX_REPLY_CHARS = 1_000_000  # of one string: GET of a 512 MB value keeps its start
SECRET_CONFIG = {"requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass"}
_SECRET_WORDS = ("pass", "auth", "secret")
_NOT_SECRET = {"tls-auth-clients", "masteruser"}  # yes/no/optional; a user name


def secret_parameter(name: str) -> bool:
    """Whether a CONFIG parameter's value is a credential (by name, so new ones are covered)."""
    name = name.lower()
    return name in SECRET_CONFIG or (name not in _NOT_SECRET and any(w in name for w in _SECRET_WORDS))


def _masked_config(reply: Any) -> Any:
    """CONFIG GET's reply with secret values as ****; an empty one (no password) stays empty."""
    if isinstance(reply, dict):  # RESP3
        return {k: MASK if v and secret_parameter(k) else v for k, v in reply.items()}
    if isinstance(reply, list):  # RESP2: name, value, name, value, ...
        return [MASK if i % 2 and v and secret_parameter(str(reply[i - 1])) else v for i, v in enumerate(reply)]
    return reply


def _jsonable(value: Any, cut: list[int]) -> Any:
    """The reply as JSON-like data, each list / mapping cut to MAX_REPLY_ITEMS (cut[0] counts
    the items left out) before it is converted, so a huge reply costs no more than a small one."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if len(value) > MAX_REPLY_CHARS:
            cut[0] += 1
            return value[:MAX_REPLY_CHARS] + "..."
        return value
    if isinstance(value, dict):
        cut[0] += max(0, len(value) - MAX_REPLY_ITEMS)
        return {str(_jsonable(k, cut)): _jsonable(v, cut) for k, v in islice(value.items(), MAX_REPLY_ITEMS)}
    if isinstance(value, (list, tuple, set)):
        cut[0] += max(0, len(value) - MAX_REPLY_ITEMS)
        return [_jsonable(v, cut) for v in islice(value, MAX_REPLY_ITEMS)]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def _lines_capped(text: str, cut: list[int]) -> str:
    """CLIENT LIST: one line per client, thousands on a busy server."""
    lines = text.splitlines()
    if len(lines) <= MAX_REPLY_ITEMS:
        return text
    cut[0] += len(lines) - MAX_REPLY_ITEMS
    return "\n".join([*lines[:MAX_REPLY_ITEMS], f"({len(lines) - MAX_REPLY_ITEMS} more)"])


def redis_reply(words: tuple[str, ...], raw: Any) -> dict[str, Any]:
    """A Redis reply as a step's names (value, data, summary): masked, then capped."""
    name = " ".join(w.upper() for w in words[:2])
    cut = [0]
    if name == "CONFIG GET":
        raw = _masked_config(raw)
    if name == "CLIENT LIST" and isinstance(raw, (str, bytes)):
        raw = _lines_capped(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw, cut)
    reply = _jsonable(raw, cut)
    value = reply if isinstance(reply, (int, float, str)) and not isinstance(reply, bool) else None
    data = reply if isinstance(reply, dict) else {"reply": reply}
    shown = reply_text(words, reply)  # words, not a repr: `SCAN 0: no keys (scan complete)`
    summary = f"{' '.join(words[:2])}: {shown[:120]}"
    if cut[0]:
        if not isinstance(reply, dict):
            data["omitted"] = cut[0]  # a mapping reply's own keys are the data: said in the summary only
        summary += f" (reply cut: {cut[0]} more item(s) not kept)"
    return {"status": "ok", "value": value, "data": data, "summary": summary}


async def _refuse_oversized(client: Any, words: tuple[str, ...]) -> None:
    """HGETALL of a hash with a million fields would block the server and flood the step."""
    sized = REDIS_SIZED.get(words[0].upper())
    if sized and len(words) == 2:
        size = await client.execute_command(sized[0], words[1])
        if isinstance(size, int) and size > MAX_REPLY_ITEMS:
            raise PermissionError(f"Redis command refused: {words[0]} {words[1]}: {size} items (over {MAX_REPLY_ITEMS}); use {sized[1]}")


async def redis_call(target: RedisTarget, words: tuple[str, ...], command: str, timeout: float, *, read: bool = True) -> dict[str, Any]:
    """One Redis command; a read is refused here unless it still classifies as a read."""
    words = tuple(split_command(command))  # the filled command, not the template
    verdict = classify_redis(list(words))
    if verdict.verdict == "refused" or (read and not verdict.read_only):
        raise PermissionError(f"Redis command refused: {verdict.reason}")
    import redis.asyncio as aioredis

    # Reads use the probes' credential; an action only its own (a read-only ACL user cannot act).
    url = target.url if read else target.action_url
    if not url:
        raise PermissionError(f"{target.name}: {missing_action_credential(target)}")
    client = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)
    try:
        async with asyncio.timeout(timeout):
            await _refuse_oversized(client, words)
            raw = await client.execute_command(*words)
    finally:
        await client.aclose()
    return redis_reply(words, raw)


def missing_action_credential(target: Any) -> str:
    """Why `target` runs no action (the key or variable to set), or "" when it can.

    PostgreSQL actions connect with `action_dsn`, Redis actions with `action_url`, HTTP actions
    send `action_headers_env` (runbooks.http_action); Docker targets have no separate credential."""
    if isinstance(target, PostgresTarget):
        from probes.postgres import missing_action_credential as postgres_missing

        return postgres_missing(target)
    if isinstance(target, RedisTarget) and not target.action_url:
        if target.action_url_env:
            return f"no action credential: environment variable {target.action_url_env} (action_url_env) is not set"
        return "no action credential: set action_url or action_url_env on this target"
    if isinstance(target, HttpTarget):
        from runbooks.http_action import missing_action_credential as http_missing

        return http_missing(target)
    return ""


def unlisted_container(target: DockerTarget, name: str) -> str | None:
    """Why `name` is out of bounds for `target`, or None. A target that lists its containers
    covers those only: its runbooks neither read nor act on the engine's other containers
    (another team's, or the engine's own helpers)."""
    if target.containers and name not in target.containers:
        return f"container {name} is not one of {target.name}'s containers ({', '.join(target.containers)})"
    return None


# Each docker action and the SDK's Container method that does it: `docker rm` is remove().
SDK_METHODS = {"restart": "restart", "stop": "stop", "start": "start", "kill": "kill",
               "pause": "pause", "unpause": "unpause", "rm": "remove"}


def docker_words(command: str) -> list[str]:
    """A docker block's words without the optional `docker`, the verb lower case (authors write
    `DOCKER RESTART web`; container names keep their case)."""
    words = split_command(command)
    words = words[1:] if words[:1] and words[0].lower() == "docker" else words
    return [words[0].lower(), *words[1:]] if words else words


async def docker_call(env: Environment, target: DockerTarget, words: tuple[str, ...], command: str, timeout: float, *, read: bool) -> dict[str, Any]:
    """A docker read (ps / inspect / logs) or, with read=False, an action (restart, stop, ...)."""
    parts = docker_words(command)
    verdict = classify_docker(parts)
    if verdict.verdict == "refused" or (read and not verdict.read_only) or (not read and verdict.read_only):
        raise PermissionError(f"docker command refused: {verdict.reason}")
    verb = parts[0]
    if len(parts) > 1 and (outside := unlisted_container(target, parts[1])):
        raise PermissionError(outside)
    from probes import docker as docker_probe

    if verb == "ps":
        res = await docker_probe.containers(target, env.thresholds, timeout=timeout)
        return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary}
    from probes.docker_reads import resolve

    # In a Compose target `api` is the service's container; nothing outside the project is reached.
    name = parts[1]
    if target.compose_project:
        name = await asyncio.wait_for(asyncio.to_thread(_sync, target, timeout, name, resolve, target, name), timeout + 1.0)
    if verb == "inspect":
        return await _inspect(env, target, name, timeout)
    return await asyncio.wait_for(asyncio.to_thread(_sync, target, timeout, name, _docker_sync, parts, name, timeout), timeout + 1.0)


async def _inspect(env: Environment, target: DockerTarget, name: str, timeout: float) -> dict[str, Any]:
    """The containers probe's row for one container (its verdict included), plus its settings."""
    from probes import docker as docker_probe
    from probes.docker_reads import settings, settings_summary

    one = replace(target, containers=(name,))  # inspects this container only, not the engine's all
    session = docker_probe.Session(one)
    try:
        res = await docker_probe.containers(one, env.thresholds, timeout=timeout, session=session)
        inspected = [found for _, found, _ in session.inspected.values()]
    finally:
        await session.aclose()
    if res.status == "error":
        return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary}
    row = next((c for c in res.data.get("containers", []) if c.get("name") == name), None)
    inspect = next((i for i in inspected if (i.get("Name") or "").lstrip("/") == name), None)
    if row is None or inspect is None:
        raise LookupError(f"{target.name}: no container named {name!r}")
    found = settings(inspect)
    return {"status": "ok", "value": row.get("restart_count"), "data": {**row, **found},
            "summary": settings_summary(name, row, found)}


def _sync(target: DockerTarget, timeout: float, name: str, work: Any, *args: Any) -> Any:
    """`work(client, *args)` with a client of its own, closed after; the engine's explanation
    of a failure rather than the SDK's text (which starts with the request URL)."""
    import docker

    client = docker.DockerClient(base_url=target.base_url, timeout=timeout)
    client.api.trust_env = False  # never through a proxy from the environment
    try:
        return work(client, *args)
    except docker.errors.NotFound:
        raise LookupError(f"{target.name}: no container named {name!r}") from None
    except docker.errors.APIError as exc:
        # "You cannot remove a running container ...".
        raise RuntimeError(str(exc.explanation or exc)) from None
    finally:
        client.close()


def _docker_sync(client: Any, parts: list[str], name: str, timeout: float) -> dict[str, Any]:
    from probes.docker_reads import logs_summary, read_logs

    container = client.containers.get(name)
    if parts[0] == "logs":
        lines, since_s = docker_log_options(parts[2:])
        data = read_logs(container, lines, since_s, time.monotonic() + timeout)
        data["container"] = name
        return {"status": "ok", "value": len(data["lines"]), "data": data, "summary": logs_summary(name, data)}
    getattr(container, SDK_METHODS[parts[0]])()
    return {"status": "ok", "value": None, "data": {"container": name, "done": parts[0]},
            "summary": f"{parts[0]} {name}"}
