"""Prometheus and Alertmanager as sources: their typed config entries and how they are read.

Kept apart from `probes/config_targets.py` (the target kinds a probe talks to directly): these are
servers that already watch the fleet, read over their HTTP APIs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probes.secrets import mask_url, remember

if TYPE_CHECKING:
    from probes.config import _Validator

# The standard exporter metrics (postgres_exporter, redis_exporter, blackbox_exporter), one
# instant query each; `queries = { name = "..." }` in the config replaces one, "" drops it.
# The replication lag metric was renamed: postgres_exporter 0.11 (Debian 12) has
# `pg_replication_lag` (from queries.yaml), later versions `pg_replication_lag_seconds`.
DEFAULT_QUERIES: dict[str, str] = {
    "targets_up": "up",
    "pg_up": "pg_up",
    "pg_connections": "sum by (instance, server, state) (pg_stat_activity_count)",
    "pg_locks": "sum by (instance, server, mode) (pg_locks_count)",
    "pg_replication_bytes": "pg_stat_replication_pg_wal_lsn_diff",
    "pg_replication_lag_s": "pg_replication_lag_seconds or pg_replication_lag",
    "redis_up": "redis_up",
    "redis_memory_bytes": "redis_memory_used_bytes",
    "redis_clients": "redis_connected_clients",
    "probe_success": "probe_success",
    "probe_duration_s": "probe_duration_seconds",
    "probe_http_status": "probe_http_status_code",
    "probe_cert_expiry": "probe_ssl_earliest_cert_expiry",
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class PrometheusTarget:
    name: str
    url: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    queries: tuple[tuple[str, str], ...] = tuple(DEFAULT_QUERIES.items())
    group: str = ""  # panes with more targets than rows show one line per group

    @property
    def display_url(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True, slots=True)
class AlertmanagerTarget:
    name: str
    url: str = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # runbook_url annotation -> warroom runbook id, for URLs that name no runbook by themselves
    runbook_urls: tuple[tuple[str, str], ...] = ()
    group: str = ""

    @property
    def display_url(self) -> str:
        return mask_url(self.url)


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """`Name: value` pairs, one a line (or separated by `\\n`); ValueError naming the line number,
    never its content. Every value is remembered as a secret (tokens, basic auth)."""
    pairs = []
    for number, line in enumerate(text.replace("\\n", "\n").splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name.strip()) or not value.strip():
            raise ValueError(f"header {number} is not `Name: value`")
        remember(value.strip())
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _headers(v: _Validator, t: dict[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    var = v.typed(t, "headers_env", key, str, "")
    if not var:
        return ()
    text = os.environ.get(var)
    if not text:
        raise v.fail(f"{key}.headers_env", f"environment variable {var} is not set")
    try:
        return parse_headers(text)
    except ValueError as exc:
        raise v.fail(f"{key}.headers_env", f"environment variable {var}: {exc}") from None


def _url(v: _Validator, t: dict[str, Any], key: str) -> str:
    url = v.checked_url(v.typed(t, "url", key, str, required=True), f"{key}.url", "http")
    return url.rstrip("/")


def _name(v: _Validator, t: dict[str, Any], key: str) -> str:
    name = v.typed(t, "name", key, str, required=True)
    if not name.strip():
        raise v.fail(f"{key}.name", "must not be empty")
    return name


def prometheus(v: _Validator, raw: Any, key: str) -> PrometheusTarget:
    t = v.table(raw, key, {"name", "url", "headers_env", "queries", "group"})
    overrides = v.typed(t, "queries", key, dict, {})
    queries = dict(DEFAULT_QUERIES)
    for probe, expr in overrides.items():
        if not isinstance(expr, str):
            raise v.fail(f"{key}.queries.{probe}", "expected a PromQL string (\"\" turns the query off)")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", probe):
            raise v.fail(f"{key}.queries.{probe}", "expected a lower-case name such as pg_up")
        queries[probe] = expr.strip()
    active = tuple((probe, expr) for probe, expr in queries.items() if expr)
    return PrometheusTarget(_name(v, t, key), _url(v, t, key), _headers(v, t, key), active, group=v.group(t, key))


def alertmanager(v: _Validator, raw: Any, key: str) -> AlertmanagerTarget:
    t = v.table(raw, key, {"name", "url", "headers_env", "runbook_urls", "group"})
    mapping = v.typed(t, "runbook_urls", key, dict, {})
    for url, runbook in mapping.items():
        if not isinstance(runbook, str) or not runbook.strip():
            raise v.fail(f"{key}.runbook_urls", f"expected \"URL\" = \"runbook-id\" pairs; {url!r} has no runbook id")
    urls = tuple((url.strip(), runbook.strip()) for url, runbook in mapping.items())
    return AlertmanagerTarget(_name(v, t, key), _url(v, t, key), _headers(v, t, key), urls, group=v.group(t, key))


def sources(v: _Validator, env: dict[str, Any], key: str) -> tuple[tuple[PrometheusTarget, ...], tuple[AlertmanagerTarget, ...]]:
    """The `[[environments.X.prometheus]]` and `[[environments.X.alertmanager]]` entries."""
    proms = tuple(prometheus(v, t, f"{key}.prometheus[{i}]") for i, t in enumerate(v.typed(env, "prometheus", key, list, [])))
    ams = tuple(alertmanager(v, t, f"{key}.alertmanager[{i}]") for i, t in enumerate(v.typed(env, "alertmanager", key, list, [])))
    return proms, ams
