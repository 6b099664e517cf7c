"""Validation of HTTP target keys, shared by the config's [[environments.X.http]] and runbook probe blocks."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from probes.secrets import remember

if TYPE_CHECKING:
    from probes.config import HttpTarget, _Validator

READ_METHODS = ("GET", "HEAD", "OPTIONS")
FORMATS = ("json", "prometheus", "text")
MAX_PATTERN = 500
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECRET_HEADER_WORDS = ("auth", "token", "key", "secret", "cookie", "session", "password")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEYS = {"name", "url", "method", "expect_status", "latency_warn_ms", "latency_fail_ms", "json_field", "json_equals",
        "group", "headers", "headers_env", "action_headers_env", "expect_headers", "pass", "warn", "format", "body_contains", "body_matches"}


def _validator(where: Any) -> _Validator:
    from probes.config import _Validator

    if isinstance(where, _Validator):
        return where
    return _Validator(Path(str(where or "<config>")), "")


def _pairs(v: _Validator, t: dict[str, Any], name: str, key: str, what: str) -> tuple[tuple[str, str], ...]:
    table = v.typed(t, name, key, dict, {})
    out = []
    for header, value in table.items():
        if not _HEADER_NAME.fullmatch(header):
            raise v.fail(f"{key}.{name}", f"{header[:40]!r} is not an HTTP header name")
        if not isinstance(value, str):
            raise v.fail(f"{key}.{name}.{header}", f"expected {what} string, got {type(value).__name__}")
        if "\n" in value or "\r" in value:
            raise v.fail(f"{key}.{name}.{header}", "a header value cannot hold a line break")
        if name.endswith("headers_env") and not _ENV_NAME.fullmatch(value):
            raise v.fail(f"{key}.{name}.{header}", "expected an environment variable name such as API_AUTH_HEADER")
        if name == "headers" and any(word in header.lower() for word in _SECRET_HEADER_WORDS):
            remember(value)  # a key written in the config itself: still masked wherever it shows
            remember(value.partition(" ")[2])
        out.append((header, value.strip() if name == "expect_headers" else value))
    return tuple(out)


def _statuses(v: _Validator, t: dict[str, Any], key: str) -> tuple[int, ...] | None:
    if "expect_status" not in t:
        return None
    raw = t["expect_status"]
    codes = raw if isinstance(raw, list) else [raw]
    if not codes or any(not isinstance(c, int) or isinstance(c, bool) or not 100 <= c <= 599 for c in codes):
        raise v.fail(f"{key}.expect_status", "expected an HTTP status code (100-599) or a list of them, "
                     "e.g. 200 or [200, 204]")
    return tuple(dict.fromkeys(codes))


def _condition(v: _Validator, t: dict[str, Any], name: str, key: str) -> Any:
    if name not in t:
        return None
    text = v.typed(t, name, key, str)
    from runbooks.conditions import ConditionError, compile_condition

    try:
        return compile_condition(text)
    except ConditionError as exc:
        raise v.fail(f"{key}.{name}", str(exc)) from None


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    p, _, q = path.partition("?")
    return urlunsplit((parts.scheme, parts.netloc, p, q, ""))


def http_target(raw: Mapping[str, Any], key: str, *, base: HttpTarget | None = None, where: Any = None) -> HttpTarget:
    """An HttpTarget from `raw` (a config table or a probe block's keys over `base`).

    `where` is the config's _Validator (or a file name for messages). ConfigError names the key.
    With `base`, `name`/`url` come from it and a `path` key replaces its URL's path."""
    from probes.config import HttpTarget

    v = _validator(where)
    t = v.table(dict(raw) if isinstance(raw, Mapping) else raw, key, KEYS | ({"path"} if base else set()))
    changes: dict[str, Any] = {}
    if base is None:
        url = v.checked_url(v.typed(t, "url", key, str, required=True), f"{key}.url", "http")
        parts = urlsplit(url)
        if parts.password:  # sent as Basic auth: remember it in every spelling
            remember(unquote(parts.password))
        changes |= {"name": v._name(t, key), "url": url, "group": v.group(t, key)}
    else:
        if "url" in t:
            changes["url"] = v.checked_url(v.typed(t, "url", key, str), f"{key}.url", "http")
        if "path" in t:
            path = v.typed(t, "path", key, str)
            if not path.startswith("/"):
                raise v.fail(f"{key}.path", "expected a path starting with /")
            changes["url"] = _with_path(changes.get("url", base.url), path)
    if "method" in t:
        method = v.typed(t, "method", key, str).upper()
        if method not in READ_METHODS:
            raise v.fail(f"{key}.method", f"probes are read-only: expected GET, HEAD or OPTIONS, got {method[:20]}; "
                         "POST, PUT, PATCH and DELETE belong in a runbook ```http action block")
        changes["method"] = method
    if (codes := _statuses(v, t, key)) is not None:
        changes["expect_status"] = codes
    for name in ("latency_warn_ms", "latency_fail_ms"):
        if name in t:
            changes[name] = v.typed(t, name, key, float)
    if "json_field" in t:
        changes["json_field"] = v.typed(t, "json_field", key, str)
    if "json_equals" in t:
        changes["json_equals"] = t["json_equals"]
    if base is not None and "action_headers_env" in t:
        raise v.fail(f"{key}.action_headers_env", "belongs to the target in the config: a runbook does not choose "
                     "which secrets are sent")
    for name, what in (("headers", "a"), ("headers_env", "a variable name"), ("action_headers_env", "a variable name"),
                       ("expect_headers", "an expected")):
        if name in t:
            changes[name] = _pairs(v, t, name, key, what)
    for name, field in (("pass", "pass_when"), ("warn", "warn_when")):
        if name in t:
            changes[field] = _condition(v, t, name, key)
    if "format" in t:
        fmt = v.typed(t, "format", key, str).lower()
        if fmt not in FORMATS:
            raise v.fail(f"{key}.format", f"expected json, prometheus or text, got {fmt[:20]!r}")
        changes["format"] = fmt
    if "body_contains" in t:
        changes["body_contains"] = v.typed(t, "body_contains", key, str)
    if "body_matches" in t:
        pattern = v.typed(t, "body_matches", key, str)
        if len(pattern) > MAX_PATTERN:
            raise v.fail(f"{key}.body_matches", f"expected a regular expression of at most {MAX_PATTERN} characters")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise v.fail(f"{key}.body_matches", f"not a regular expression: {exc}") from None
        changes["body_matches"] = pattern
    if base is not None:
        return dataclasses.replace(base, **changes)
    return HttpTarget(**changes)
