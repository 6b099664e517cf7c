"""What an HTTP probe sends and checks beyond the status: request headers (headers_env, URL
user-info as Basic auth), response headers, JSON / Prometheus / text bodies, pass/warn conditions."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from probes.config import HttpTarget
from probes.http_body import MAX_BODY_BYTES, masked_json, parse_metrics
from probes.result import Status
from probes.secrets import MASK, mask_url, remember

# Sent with every probe. `identity`: a health answer is small, and an uncompressed one needs
# no decoding (a server that compresses anyway is still decoded, see http_body.decoded).
HEADERS = {
    "User-Agent": "warroom-probe",
    "Accept": "application/json, */*;q=0.5",
    "Accept-Encoding": "identity",
}

_MASKED_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
MAX_HEADERS = 50
HEADER_CHARS = 300
MAX_JSON_BYTES = 256 * 1024  # data.json: bigger bodies are not kept
TEXT_SCAN = MAX_BODY_BYTES  # body_contains / body_matches read at most this much


def request_headers(target: HttpTarget) -> tuple[dict[str, str], str, set[str]]:
    """(headers to send, URL without user-info, lower-case names of secret headers);
    KeyError naming the environment variable that is missing."""
    headers = dict(HEADERS)
    secret: set[str] = set()
    parts = urlsplit(target.url)
    url = target.url
    if parts.username is not None or parts.password is not None:
        # curl sends URL user-info as Basic auth; so do we (httpx would too, but not via the pool)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        remember(token)
        headers["Authorization"] = f"Basic {token}"
        secret.add("authorization")
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    for name, value in target.headers:
        headers[name] = value
    for name, var in target.headers_env:
        value = os.environ.get(var)
        if not value:
            raise KeyError(var)
        remember(value)
        headers[name] = value
        secret.add(name.lower())
    return headers, url, secret


def shown_headers(headers: Any, secret: set[str]) -> dict[str, str]:
    """Response headers for data: lower-case names, repeated fields joined, secrets masked."""
    shown: dict[str, str] = {}
    for name in list(headers)[:MAX_HEADERS]:
        low = name.lower()
        shown[low] = MASK if low in _MASKED_HEADERS or low in secret else mask_url(headers.get(name))[:HEADER_CHARS]
    return shown


def _body_format(target: HttpTarget, content_type: str) -> str:
    if target.format:
        return target.format
    return "json" if "json" in content_type.lower() else "text"


def conditions(target: HttpTarget, data: dict[str, Any], issues: list[tuple[Status, str]], status: Status) -> None:
    """The target's pass/warn conditions over the result (evaluated here, in the probe, so the
    Services pane, `warroom check` and runbooks grade alike; runbooks.conditions is pure Python)."""
    from runbooks.conditions import EvalError

    names = {"data": data, "status": str(status), "value": data.get("latency_ms")}
    for cond, bad_when, grade_as in ((target.pass_when, False, Status.FAIL), (target.warn_when, True, Status.WARN)):
        if cond is None:
            continue
        try:
            verdict = bool(cond.evaluate(names))
        except EvalError as exc:
            issues.append((Status.FAIL, f"cannot evaluate {mask_url(str(exc))[:200]}"))
            continue
        if grade_as is Status.FAIL:
            data["pass_ok"] = verdict  # what triggers test: the condition, not slowness
        if verdict is bad_when:
            word = "pass condition failed" if grade_as is Status.FAIL else "warn condition holds"
            issues.append((grade_as, f"{word}: {cond.text[:120]}"))


def body_checks(target: HttpTarget, data: dict[str, Any], body: bytes, content_type: str,
                 issues: list[tuple[Status, str]]) -> None:
    if target.method == "HEAD":
        return
    fmt = _body_format(target, content_type)
    data["format"] = fmt
    if fmt == "json" and len(body) <= MAX_JSON_BYTES:
        try:
            data["json"] = masked_json(json.loads(body))
        except ValueError:
            data["json"] = None
            if target.format == "json":
                issues.append((Status.FAIL, "response is not JSON"))
    text = body[:TEXT_SCAN].decode("utf-8", "replace")
    if fmt == "prometheus":
        try:
            data["metrics"] = parse_metrics(text)
        except (ValueError, TypeError, IndexError) as exc:
            data["metrics"] = None
            issues.append((Status.FAIL, f"not a Prometheus exposition: {mask_url(str(exc))[:100]}"))
    if target.body_contains is not None and target.body_contains not in text:
        issues.append((Status.FAIL, f"body does not contain {mask_url(target.body_contains)[:60]!r}"))
    if target.body_matches is not None and not re.search(target.body_matches, text):
        issues.append((Status.FAIL, f"body does not match {mask_url(target.body_matches)[:60]!r}"))


def expected_codes(codes: tuple[int, ...]) -> str:
    return " or ".join(str(c) for c in codes)
