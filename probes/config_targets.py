"""The typed targets of an environment (PostgreSQL, Redis, HTTP, Docker) and the Environment itself.
Plain frozen dataclasses that validate nothing: `probes/config.py` checks every key of the TOML,
builds these and re-exports them, so callers import them from `probes.config`; the DNS, TCP and
Prometheus/Alertmanager entries an Environment also holds have their types in config_net and
config_sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes import endpoints
from probes.config_net import DnsTarget, TcpTarget
from probes.config_sources import AlertmanagerTarget, PrometheusTarget
from probes.secrets import mask_url
from probes.thresholds import Thresholds


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    name: str
    dsn: str = field(repr=False)
    role: str = "primary"  # primary / replica
    expect_replicas: tuple[str, ...] = ()
    # Actions connect with their own credential; "" means this target runs no SQL action.
    action_dsn: str = field(default="", repr=False)
    action_dsn_env: str = ""  # the variable action_dsn came from, named when it is not set
    group: str = ""  # panes with more targets than rows show one line per group ("payments")

    @property
    def display_dsn(self) -> str:
        return mask_url(self.dsn)

    @property
    def address(self) -> str:
        return endpoints.postgres_address(self.dsn) or self.display_dsn


@dataclass(frozen=True, slots=True)
class RedisTarget:
    name: str
    url: str = field(repr=False)
    queues: tuple[str, ...] = ()
    discover: bool = True
    scan_count: int = 1000  # upper bound on keys examined by queue discovery
    # Actions connect with their own credential; "" means this target runs no Redis action.
    action_url: str = field(default="", repr=False)
    action_url_env: str = ""  # the variable action_url came from, named when it is not set
    group: str = ""

    @property
    def display_url(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True, slots=True)
class HttpTarget:
    name: str
    url: str = field(repr=False)  # may carry a token in its query string
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    latency_warn_ms: float | None = None
    latency_fail_ms: float | None = None
    json_field: str | None = None  # dotted path, e.g. "status.indicator"
    json_equals: Any = None
    group: str = ""
    # probes/config_http.py: (name, value) pairs in config order; headers_env values are
    # environment variable names, read at probe time and masked everywhere.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold an API key
    headers_env: tuple[tuple[str, str], ...] = ()
    action_headers_env: tuple[tuple[str, str], ...] = ()  # sent by runbook HTTP actions only
    expect_headers: tuple[tuple[str, str], ...] = ()
    pass_when: Any = None  # runbooks.conditions.Condition, compiled at load
    warn_when: Any = None
    format: str = ""  # "" = json when the answer says JSON, else text; or "prometheus"
    body_contains: str | None = None
    body_matches: str | None = None


@dataclass(frozen=True, slots=True)
class DockerTarget:
    name: str = "docker"
    base_url: str = ""
    containers: tuple[str, ...] = ()  # empty: all containers (of the Compose project, if one is set)
    group: str = ""
    compose_project: str = ""  # only containers labelled com.docker.compose.project=this


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    postgres: tuple[PostgresTarget, ...] = ()
    redis: tuple[RedisTarget, ...] = ()
    http: tuple[HttpTarget, ...] = ()
    docker: DockerTarget | None = None
    prometheus: tuple[PrometheusTarget, ...] = ()  # servers read over their APIs (config_sources)
    alertmanager: tuple[AlertmanagerTarget, ...] = ()
    dns: tuple[DnsTarget, ...] = ()  # questions to name servers (config_net)
    tcp: tuple[TcpTarget, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    refresh_s: float = 2.0
    timeout_s: float = 2.0
    banner: str = ""
    color: str = ""
    production: bool = False

    def postgres_named(self, name: str) -> PostgresTarget | None:
        return next((t for t in self.postgres if t.name == name), None)

    def target_names(self) -> list[str]:
        names = [t.name for t in (*self.postgres, *self.redis, *self.http)]
        names += [t.name for t in (*self.prometheus, *self.alertmanager)]
        names += [t.name for t in (*self.dns, *self.tcp)]
        return names + ([self.docker.name] if self.docker else [])
