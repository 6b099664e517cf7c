"""A step's automatic read, per kind: probe, SQL, Redis, Docker, PromQL and HTTP (the names its
pass condition sees). Every read is checked again once its templates are filled in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from probes.config import Environment
from runbooks.classify import classify_sql
from runbooks.commands import docker_call, find_target, redis_call
from runbooks.http_block import parse_request, request_path
from runbooks.model import Step
from runbooks.sessions import shared_session

SQL_MIN_TIMEOUT_S = 5.0
MAX_ROWS = 200


async def read(step: Step, env: Environment, command: str, timeout: float, context: Any = None) -> dict[str, Any]:
    """Run the step's read; the names its pass condition sees. Raises on failure."""
    kind, target = find_target(env, step.target, step.target_kind)
    session = shared_session(context, kind, target)  # the connection the probes already hold
    if step.block == "probe":
        from probes.registry import collect_target

        if step.http:  # `probe: http` with its own method / path / headers / expectations
            target = step_http_target(dict(step.http), target, step.id)
        results = await collect_target(kind, target, env, timeout=timeout, session=session)
        res = next((r for r in results if r.probe == step.probe), None)
        if res is None:
            raise LookupError(f"{step.target}: the {kind} backend returned no {step.probe!r} reading")
        return _probe_names(res)
    if step.block == "http":
        return await _http_read(step, env, target, command, timeout)
    if step.block == "sql":
        verdict = classify_sql(command)  # again, after the templates were filled
        if not verdict.read_only:
            raise PermissionError(f"not read-only once filled in: {verdict.reason}")
        from probes import postgres

        rows = await postgres.run_readonly_sql(target, command, timeout=max(timeout, SQL_MIN_TIMEOUT_S), session=session)
        rows = [{k: plain(v) for k, v in r.items()} for r in rows]
        first = rows[0] if rows else None
        return {"status": "ok", "rows": len(rows), "row": first, "value": next(iter(first.values()), None) if first else None,
                "data": {"rows": rows[:MAX_ROWS]}, "summary": f"{len(rows)} row(s)"}
    if step.block == "redis":
        return await redis_call(target, step.words, command, timeout)
    if step.block == "promql":
        from probes import prometheus

        res = await prometheus.query(target, command, probe="promql", timeout=timeout, session=session)
        series = res.data.get("series") or []
        return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary,
                "series": series, "count": res.data.get("count", len(series))}
    return await docker_call(env, target, step.words, command, timeout, read=True)


def _probe_names(res: Any) -> dict[str, Any]:
    return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary,
            "target": res.target, "probe": res.probe}


def step_http_target(raw: dict[str, Any], base: Any, step_id: str) -> Any:
    """The HTTP target a step reads: the config's, with the step's keys over it (the same keys
    and checks as the config's, probes.config_http). ValueError saying which key is wrong."""
    from probes.config import ConfigError
    from probes.config_http import http_target

    try:
        return http_target(raw, f"step {step_id}", base=base)
    except ConfigError as exc:
        raise ValueError(f"{exc.key}: {exc.expected}" if exc.key else exc.expected) from None


async def _http_read(step: Step, env: Environment, target: Any, command: str, timeout: float) -> dict[str, Any]:
    """A GET / HEAD / OPTIONS block, through the HTTP probe (its grading, masking, timing)."""
    request = parse_request(command)  # the filled-in block, checked again
    if not request.is_read:
        raise PermissionError(f"not a read once filled in: {request.method} is an action")
    raw: dict[str, Any] = {"method": request.method, "path": request_path(request, target.url, step.target),
                           "expect_status": list(range(200, 300))}
    headers = dict(request.headers)
    if request.body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = request.content_type
    if headers:
        raw["headers"] = headers
    from probes import http

    aimed = step_http_target(raw, _without_expectations(target), step.id)
    send = getattr(http, "request", None)  # probes.http.request sends a body; http.http only reads
    if send is None:
        if request.body:
            raise RuntimeError("this warroom's HTTP probe sends no request body")
        res = await http.http(aimed, env.thresholds, timeout=timeout)
    else:
        res = await send(aimed, env.thresholds, timeout=timeout, body=request.body_bytes if request.body else None)
    return _probe_names(res)


# What the config expects of the target's own URL says nothing of another path: a block's
# request is graded by its status (2xx), the latency lines and the step's own `pass`.
_EXPECTATIONS = ("expect_status", "expect_headers", "pass_when", "warn_when", "json_field", "json_equals",
                 "body_contains", "body_matches", "format")


def _without_expectations(target: Any) -> Any:
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(target):
        if f.name in _EXPECTATIONS and f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
        elif f.name in _EXPECTATIONS and f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
    return dataclasses.replace(target, **defaults)


def plain(value: Any) -> Any:
    """SQL values as JSON-like data: conditions compare numbers, journals store text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
