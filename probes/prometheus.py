"""Prometheus as a source: instant and range PromQL queries over its HTTP API, as ProbeResults.

Each configured query (`config_sources.DEFAULT_QUERIES`, the standard exporter metrics, or the
config's own) is one probe; its data keeps every series of the vector, labels and value, and
says where the reading came from (`data.source = "prometheus"`).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import httpx

from probes.config_sources import PrometheusTarget
from probes.result import ProbeResult, Status, error_result, guarded
from probes.secrets import redact
from probes.thresholds import Thresholds

KIND = "prometheus"
SOURCE = "prometheus"
PROBES = ("query",)  # the real names are the target's queries; this stands for them when unknown
MAX_POINTS = 11_000  # Prometheus refuses a range query with more points per series
MAX_SERIES_KEPT = 200  # series kept in a result's data (the count is always exact)
# Queries whose series read 1 when healthy: a 0 among them is a failure, not a value.
HEALTH_QUERIES = ("targets_up", "pg_up", "redis_up", "probe_success")


class PrometheusError(Exception):
    """The API answered with an error, or not with the shape it documents."""


class Session:
    """One HTTP client per Prometheus, kept alive between refreshes."""

    def __init__(self, target: PrometheusTarget | Any) -> None:
        self.target = target
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = new_client(self.target)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def new_client(target: Any) -> httpx.AsyncClient:
    # trust_env=False: no proxy from the environment (it may leave loopback); no redirects.
    return httpx.AsyncClient(
        base_url=target.url, headers=dict(target.headers), trust_env=False, follow_redirects=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
    )


def sourced(results: list[ProbeResult], source: str = SOURCE) -> list[ProbeResult]:
    """Every result says where it came from, the guard's own errors included."""
    return [r if r.data.get("source") else replace(r, data={**r.data, "source": source}) for r in results]


def describe_error(exc: BaseException) -> str | None:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is Prometheus running?)"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from the API"
    if isinstance(exc, PrometheusError):
        return str(exc)
    return None


async def api_get(client: httpx.AsyncClient, path: str, params: dict[str, Any], timeout: float) -> Any:
    """GET an `/api/v1/...` endpoint; its `data`, or PrometheusError with Prometheus's own words."""
    response = await client.get(path, params=params, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        response.raise_for_status()
        raise PrometheusError(f"HTTP {response.status_code}: not a Prometheus API answer") from None
    if body.get("status") != "success":
        kind, text = body.get("errorType", "error"), str(body.get("error", ""))[:200]
        raise PrometheusError(f"{kind}: {text}")
    return body.get("data")


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def series_of(data: Any) -> list[dict[str, Any]]:
    """[{labels, value}] of an instant answer (vector or scalar), worst-looking first is the
    caller's business; values that are not finite numbers are None."""
    if not isinstance(data, dict):
        raise PrometheusError("answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        return [{"labels": {}, "value": _number(result[1] if isinstance(result, list) else None)}]
    if kind != "vector" or not isinstance(result, list):
        raise PrometheusError(f"expected an instant vector, got {kind}")
    return [{"labels": dict(s.get("metric") or {}), "value": _number((s.get("value") or [None, None])[1])} for s in result]


def _label_text(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    name = labels.get("instance") or labels.get("server") or labels.get("job")
    return name or ",".join(f"{k}={v}" for k, v in sorted(shown.items())) or "value"


def judge(probe: str, target: str, expr: str, series: list[dict[str, Any]], elapsed_ms: float) -> ProbeResult:
    """A ProbeResult for one query's series: health queries fail on any 0, the rest report."""
    values = [s["value"] for s in series if s["value"] is not None]
    status, value = Status.OK, (max(values) if values else None)
    if not series:
        summary = f"{target}: {probe}: no series"
    elif probe in HEALTH_QUERIES:
        down = [s for s in series if s["value"] == 0]
        value = float(len(series) - len(down))
        if down:
            status = Status.FAIL
            names = ", ".join(_label_text(s["labels"]) for s in down[:3])
            summary = f"{target}: {probe}: {len(down)}/{len(series)} down ({names})"
        else:
            summary = f"{target}: {probe}: {len(series)}/{len(series)} up"
    elif len(series) == 1:
        summary = f"{target}: {probe} = {series[0]['value']:g}" if series[0]["value"] is not None else f"{target}: {probe}: no value"
    else:
        summary = f"{target}: {probe}: {len(series)} series, max {value:g}" if value is not None else f"{target}: {probe}: {len(series)} series"
    data = {"source": SOURCE, "query": expr, "count": len(series), "series": series[:MAX_SERIES_KEPT]}
    return ProbeResult(target, KIND, probe, status, summary, value=value, data=data, elapsed_ms=elapsed_ms)


async def instant(client: httpx.AsyncClient, target: str, probe: str, expr: str, *, timeout: float) -> ProbeResult:
    """One instant query (`/api/v1/query`); an API error is an `error` result naming it."""
    started = time.perf_counter()
    try:
        data = await api_get(client, "/api/v1/query", {"query": expr}, timeout)
        series = series_of(data)
    except PrometheusError as exc:
        ms = (time.perf_counter() - started) * 1000
        return error_result(target, KIND, probe, redact(f"{target}: {probe}: {exc}"), elapsed_ms=ms, source=SOURCE, query=expr)
    return judge(probe, target, expr, series, (time.perf_counter() - started) * 1000)


def range_step(range_s: float, columns: int) -> float:
    """Seconds between points: one point per column, never more than MAX_POINTS a series."""
    columns = max(1, min(int(columns), MAX_POINTS - 1))
    return max(math.ceil(range_s / columns * 1000) / 1000, range_s / (MAX_POINTS - 1), 0.001)


async def query_range(
    target: PrometheusTarget, expr: str, *, range_s: float, columns: int, timeout: float = 2.0,
    end: float | None = None, session: Session | None = None,
) -> ProbeResult:
    """`expr` over the last `range_s` seconds with about one point per column (a sparkline's
    width): data.series = [{labels, points: [[t, value], ...]}]. Never raises."""
    own = session or Session(target)
    end = time.time() if end is None else end
    step = range_step(range_s, columns)
    params = {"query": expr, "start": f"{end - range_s:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}

    async def work() -> list[ProbeResult]:
        data = await api_get(own.client(), "/api/v1/query_range", params, timeout)
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PrometheusError("expected a range matrix")
        series = [
            {"labels": dict(s.get("metric") or {}), "points": [[float(t), _number(v)] for t, v in s.get("values") or []]}
            for s in data.get("result") or []
        ]
        latest = [s["points"][-1][1] for s in series if s["points"] and s["points"][-1][1] is not None]
        summary = f"{target.name}: range: {len(series)} series, {max((len(s['points']) for s in series), default=0)} points"
        return [ProbeResult(target.name, KIND, "range", Status.OK, summary, value=max(latest) if latest else None,
                            data={"source": SOURCE, "query": expr, "step_s": step, "series": series[:MAX_SERIES_KEPT]})]

    try:
        return sourced(await guarded(target.name, KIND, ("range",), work(), timeout=timeout, describe_error=describe_error))[0]
    finally:
        if session is None:
            await own.aclose()


async def query(target: PrometheusTarget, expr: str, *, probe: str = "query", timeout: float = 2.0,
                session: Session | None = None) -> ProbeResult:
    """One instant query against `target` (a runbook's promql step); never raises."""
    own = session or Session(target)

    async def work() -> list[ProbeResult]:
        return [await instant(own.client(), target.name, probe, expr, timeout=timeout)]

    try:
        return sourced(await guarded(target.name, KIND, (probe,), work(), timeout=timeout, describe_error=describe_error))[0]
    finally:
        if session is None:
            await own.aclose()


async def collect(target: PrometheusTarget, thresholds: Thresholds, *, timeout: float = 2.0,
                  session: Session | None = None) -> list[ProbeResult]:
    """Every configured query of `target`, concurrently; never raises."""
    import asyncio

    own = session or Session(target)
    probes = tuple(probe for probe, _expr in target.queries)

    async def work() -> list[ProbeResult]:
        client = own.client()
        return list(await asyncio.gather(*(instant(client, target.name, p, e, timeout=timeout) for p, e in target.queries)))

    try:
        return sourced(await guarded(target.name, KIND, probes, work(), timeout=timeout, describe_error=describe_error))
    finally:
        if session is None:
            await own.aclose()
