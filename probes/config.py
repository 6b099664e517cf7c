"""The warroom TOML configuration: typed targets per environment, strict validation."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes import endpoints
from probes.config_lines import key_lines
from probes.config_net import DnsTarget, TcpTarget, dns_target, tcp_target
from probes.config_sources import AlertmanagerTarget, PrometheusTarget
from probes.config_sources import sources as _sources
from probes.config_targets import DockerTarget, Environment, HttpTarget, PostgresTarget, RedisTarget
from probes.secrets import redact, remember
from probes.thresholds import DEFAULTS, Thresholds

# The target types live in probes/config_targets.py (and config_net, config_sources); callers
# import them from here, with the loader.
__all__ = [
    "CONFIG_NAME", "AlertmanagerTarget", "Config", "ConfigError", "DnsTarget", "DockerTarget", "Environment",
    "HttpTarget", "PostgresTarget", "PrometheusTarget", "RedisTarget", "TcpTarget", "default_config_path",
    "load_config", "parse_config",
]

CONFIG_NAME = "warroom.toml"


class ConfigError(Exception):
    """A configuration problem, phrased for the operator: file, line, key, expectation."""

    def __init__(self, path: Path | str, key: str, expected: str, line: int | None = None) -> None:
        # Redacted as a last guard: a message may quote a value that holds a secret.
        key, expected = redact(key.lstrip(".")), redact(expected)
        self.path, self.key, self.expected, self.line = str(path), key, expected, line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {key}: {expected}" if key else f"{where}: {expected}")


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    environments: dict[str, Environment]
    runbook_dirs: tuple[Path, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)

    def environment(self, name: str | None = None) -> Environment:
        if name is None:
            return next(iter(self.environments.values()))
        if name not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise ConfigError(self.path, "--env", f"no environment {name!r} (known: {known})")
        return self.environments[name]


def default_config_path() -> Path:
    local = Path.cwd() / CONFIG_NAME
    if local.exists():
        return local
    import platformdirs

    return Path(platformdirs.user_config_dir("warroom")) / CONFIG_NAME


def load_config(path: Path | str | None = None) -> Config:
    path = Path(path) if path else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file (pass --config FILE or create ./warroom.toml)") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | str = CONFIG_NAME) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's message ends "(at line L, column C)"; put the line where editors jump to.
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match[1]) if match else None
        message = re.sub(r"\s*\(at line \d+, column (\d+)\)", r" (column \1)", str(exc))
        raise ConfigError(path, "", f"not valid TOML: {message}", line) from None
    except (ValueError, RecursionError) as exc:  # tomllib lets these through; never a traceback
        raise _beyond_toml_limits(path, text, exc) from None
    return _Validator(path, text).config(raw)


def _beyond_toml_limits(path: Path, text: str, exc: BaseException) -> ConfigError:
    """An integer longer than Python converts (4300 digits) or arrays nested too deep to read."""
    lines = text.split("\n")  # as TOML counts lines (splitlines() also splits at \x85, \u2028)
    if isinstance(exc, RecursionError):
        depth = 0
        for number, line in enumerate(lines, start=1):
            for char in line:
                depth += (char in "[{") - (char in "]}")
                if depth > 100:
                    return ConfigError(path, "", "not valid TOML here: arrays or tables nested too deeply", number)
        return ConfigError(path, "", "not valid TOML: arrays or tables nested too deeply")
    number = next((n for n, line in enumerate(lines, start=1) if re.search(r"\d{4000}", line.replace("_", ""))), None)
    return ConfigError(path, "", "not valid TOML here: a number with too many digits", number)


# Keys whose values may hold a secret: an error shows their type, never their value.
_SECRET_KEYS = re.compile(r"dsn|url|password|passwd|secret|token|auth|header|credential|cookie", re.I)
_TOML_TYPES = {"str": "a string", "int": "an integer", "float": "a float", "bool": "a boolean", "list": "an array",
               "dict": "a table", "datetime": "a date-time", "date": "a date", "time": "a time"}


def _shown(name: str, value: Any) -> str:
    """A wrong-typed value, for the message: its TOML type, plus the value when it is short and
    the key is not one that holds secrets."""
    kind = _TOML_TYPES.get(type(value).__name__, type(value).__name__)
    if _SECRET_KEYS.search(name) or isinstance(value, list | dict):
        return kind
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 else kind


class _Validator:
    """Walks the raw TOML, building typed targets and naming the exact key on error."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self._lines: dict[str, int] | None = None

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(self.path, key, expected, self._line_of(key))

    def _line_of(self, key: str) -> int | None:
        """The key's own line, else its nearest enclosing key's (a missing key, an inline table)."""
        if self._lines is None:
            self._lines = key_lines(self.text)
        key = key.lstrip(".")
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[: key.rindex("[")] if key.endswith("]") and "[" in key else key.rpartition(".")[0]
        return None

    def checked_url(self, value: str, key: str, kind: str) -> str:
        """`value`, a URL or DSN for a `kind` target ("postgres", "redis", "http", "docker"),
        checked as its driver will read it; every password, token and key in it is remembered
        for `redact`. The ConfigError names `key` and never quotes the value."""
        try:
            found = endpoints.check(kind, value)
        except endpoints.EndpointError as exc:
            raise self.fail(key, str(exc)) from None
        for secret in found.secrets:
            remember(secret)
        return value

    def table(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        for name in value:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{key}.{name}" if key else name, f"unknown key (known keys here: {known})")
        return value

    def typed(self, table: dict[str, Any], name: str, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if name not in table:
            if required:
                raise self.fail(f"{key}.{name}", "required key is missing")
            return default
        value = table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value) if abs(value) < 2**1023 else math.inf
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise self.fail(f"{key}.{name}", f"expected {wanted}, got {_shown(name, value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{key}.{name}", "expected an ordinary number (not inf, nan or beyond 1e308)")
        return value

    def positive(self, table: dict[str, Any], name: str, key: str, default: float) -> float:
        value = self.typed(table, name, key, float, default)
        if value <= 0:
            raise self.fail(f"{key}.{name}", f"expected a number above 0, got {value!r}")
        return value

    def _directory(self, text: str) -> Path:
        try:
            return (self.path.parent / text).resolve()
        except (OSError, ValueError):  # a NUL byte, a name too long for the file system
            raise self.fail("runbook_dirs", "expected folder paths") from None

    def strings(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = self.typed(table, name, key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key}.{name}", "expected a list of strings")
        return tuple(value)

    def secret_from_env(self, table: dict[str, Any], key: str, direct: str, env_key: str) -> str:
        if direct in table and env_key in table:
            raise self.fail(f"{key}.{direct}", f"give either {direct} or {env_key}, not both")
        if env_key in table:
            var = self.typed(table, env_key, key, str)
            value = os.environ.get(var)
            if not value:
                raise self.fail(f"{key}.{env_key}", f"environment variable {var} is not set")
            return value
        return self.typed(table, direct, key, str, required=True)

    def optional_secret(self, table: dict[str, Any], key: str, direct: str, env_key: str) -> tuple[str, str]:
        """(value, variable name) of a credential a target may go without; ("", "") when absent.

        An `*_env` variable that is not set leaves the value empty instead of failing the config:
        an operator without the action credential still gets the read-only cockpit, and the
        checklist names the variable when an action is asked for."""
        if direct in table and env_key in table:
            raise self.fail(f"{key}.{direct}", f"give either {direct} or {env_key}, not both")
        var = self.typed(table, env_key, key, str, "")
        value = os.environ.get(var, "") if var else self.typed(table, direct, key, str, "")
        if direct in table and not value.strip():
            raise self.fail(f"{key}.{direct}", "must not be empty (leave the key out instead)")
        return value, var

    def config(self, raw: dict[str, Any]) -> Config:
        self.table(raw, "", {"refresh", "timeout", "runbook_dirs", "keys", "environments"})
        refresh = self.positive(raw, "refresh", "", 2.0)
        timeout = self.positive(raw, "timeout", "", 2.0)
        runbook_dirs = tuple(self._directory(p) for p in self.strings(raw, "runbook_dirs", ""))
        keys = self.typed(raw, "keys", "", dict, {})
        for binding, value in keys.items():
            if not isinstance(value, str):
                raise self.fail(f"keys.{binding}", "expected a key name string such as \"ctrl+r\"")
        envs_raw = self.typed(raw, "environments", "", dict, required=True)
        if not envs_raw:
            raise self.fail("environments", "define at least one environment, e.g. [environments.prod]")
        environments = {
            name: self.environment(name, value, refresh, timeout) for name, value in envs_raw.items()
        }
        return Config(self.path, environments, runbook_dirs, dict(keys))

    def environment(self, name: str, raw: Any, refresh: float, timeout: float) -> Environment:
        key = f"environments.{name}"
        env = self.table(
            raw,
            key,
            {"postgres", "redis", "http", "docker", "thresholds", "refresh", "timeout", "banner", "color", "production",
             "prometheus", "alertmanager", "dns", "tcp"},
        )
        postgres = tuple(self.postgres(t, f"{key}.postgres[{i}]") for i, t in enumerate(self.typed(env, "postgres", key, list, [])))
        redis = tuple(self.redis(t, f"{key}.redis[{i}]") for i, t in enumerate(self.typed(env, "redis", key, list, [])))
        http = tuple(self.http(t, f"{key}.http[{i}]") for i, t in enumerate(self.typed(env, "http", key, list, [])))
        docker = self.docker(env["docker"], f"{key}.docker") if "docker" in env else None
        names = [t.name for t in (*postgres, *redis, *http)] + ([docker.name] if docker else [])
        prometheus, alertmanager = _sources(self, env, key)
        names += [t.name for t in (*prometheus, *alertmanager)]
        dns = tuple(dns_target(self, t, f"{key}.dns[{i}]") for i, t in enumerate(self.typed(env, "dns", key, list, [])))
        tcp = tuple(tcp_target(self, t, f"{key}.tcp[{i}]") for i, t in enumerate(self.typed(env, "tcp", key, list, [])))
        names += [t.name for t in (*dns, *tcp)]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise self.fail(f"{key}", f"target names must be unique; repeated: {', '.join(sorted(duplicates))}")
        return Environment(
            name=name,
            postgres=postgres,
            redis=redis,
            http=http,
            docker=docker,
            prometheus=prometheus,
            alertmanager=alertmanager,
            dns=dns,
            tcp=tcp,
            thresholds=self.thresholds(self.typed(env, "thresholds", key, dict, {}), f"{key}.thresholds"),
            refresh_s=self.positive(env, "refresh", key, refresh),
            timeout_s=self.positive(env, "timeout", key, timeout),
            banner=self.typed(env, "banner", key, str, ""),
            color=self.typed(env, "color", key, str, ""),
            production=self.typed(env, "production", key, bool, False),
        )

    def thresholds(self, raw: dict[str, Any], key: str) -> Thresholds:
        self.table(raw, key, set(DEFAULTS))
        overrides: dict[str, dict[str, float]] = {}
        for probe, values in raw.items():
            self.table(values, f"{key}.{probe}", set(DEFAULTS[probe]))
            overrides[probe] = {n: self.typed(values, n, f"{key}.{probe}", float) for n in values}
        return Thresholds(overrides)

    def group(self, t: dict[str, Any], key: str) -> str:
        """The optional `group = "payments"` of any target: panes with more targets than rows
        show one line per group."""
        group = self.typed(t, "group", key, str, "")
        if "group" in t and not group.strip():
            raise self.fail(f"{key}.group", "must not be empty (leave the key out instead)")
        return group.strip()

    def _name(self, t: dict[str, Any], key: str) -> str:
        name = self.typed(t, "name", key, str, required=True)
        if not name.strip():
            raise self.fail(f"{key}.name", "must not be empty")
        return name

    def postgres(self, raw: Any, key: str) -> PostgresTarget:
        t = self.table(raw, key, {"name", "dsn", "dsn_env", "action_dsn", "action_dsn_env", "role", "expect_replicas", "group"})
        action_dsn, action_var = self.optional_secret(t, key, "action_dsn", "action_dsn_env")
        if action_dsn:
            self.checked_url(action_dsn, f"{key}.{'action_dsn_env' if action_var else 'action_dsn'}", "postgres")
        dsn = self.secret_from_env(t, key, "dsn", "dsn_env")
        self.checked_url(dsn, f"{key}.{'dsn_env' if 'dsn_env' in t else 'dsn'}", "postgres")
        role = self.typed(t, "role", key, str, "primary")
        if role not in ("primary", "replica"):
            raise self.fail(f"{key}.role", f"expected \"primary\" or \"replica\", got {role!r}")
        return PostgresTarget(
            self._name(t, key), dsn, role, self.strings(t, "expect_replicas", key), action_dsn, action_var, self.group(t, key),
        )

    def redis(self, raw: Any, key: str) -> RedisTarget:
        t = self.table(raw, key, {"name", "url", "url_env", "action_url", "action_url_env", "queues", "discover", "scan_count", "group"})
        action_url, action_var = self.optional_secret(t, key, "action_url", "action_url_env")
        if action_url:
            self.checked_url(action_url, f"{key}.{'action_url_env' if action_var else 'action_url'}", "redis")
        url = self.secret_from_env(t, key, "url", "url_env")
        self.checked_url(url, f"{key}.{'url_env' if 'url_env' in t else 'url'}", "redis")
        scan_count = self.typed(t, "scan_count", key, int, 1000)
        if scan_count <= 0:
            raise self.fail(f"{key}.scan_count", "expected a positive integer")
        return RedisTarget(
            self._name(t, key), url, self.strings(t, "queues", key), self.typed(t, "discover", key, bool, True), scan_count,
            action_url, action_var, self.group(t, key),
        )

    def http(self, raw: Any, key: str) -> HttpTarget:
        from probes.config_http import http_target

        return http_target(raw, key, where=self)

    def docker(self, raw: Any, key: str) -> DockerTarget:
        t = self.table(raw, key, {"name", "base_url", "containers", "group", "compose_project"})
        base_url = self.typed(t, "base_url", key, str, "") or os.environ.get("DOCKER_HOST", "")
        self.checked_url(base_url, f"{key}.base_url" if t.get("base_url") else "DOCKER_HOST", "docker")
        project = self.typed(t, "compose_project", key, str, "")
        # Compose's own rule for project names (it lower-cases `-p`; the label holds the result).
        if "compose_project" in t and not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project):
            raise self.fail(f"{key}.compose_project", "expected a Compose project name: lower-case letters, digits, - and _ "
                            f"(as `docker compose ls` shows it), got {project[:40]!r}")
        return DockerTarget(
            name=self.typed(t, "name", key, str, "docker"),
            base_url=base_url or "unix:///var/run/docker.sock",
            containers=self.strings(t, "containers", key),
            group=self.group(t, key),
            compose_project=project,
        )
