"""HTTP steps against a config target: reads through the HTTP probe, actions sent once with the
target's own action credential (`action_headers_env`), each answer bounded and masked."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

from probes.secrets import MASK, mask_url, redact, remember
from runbooks.http_block import HttpRequest, request_path, request_url, secret_header

ACTION_MIN_TIMEOUT_S = 5.0  # a webhook redelivery does real work before it answers
MAX_ANSWER_BYTES = 64 * 1024  # of an action's answer read; the rest is left unread
MAX_ANSWER_CHARS = 4000  # of it kept in the step's data (and so in the journal)
_USER_AGENT = "warroom-action"


def _pairs(value: Any) -> list[tuple[str, str]]:
    """A target's `headers_env`-like field as (header, variable) pairs, whatever its container."""
    if not value:
        return []
    items = value.items() if hasattr(value, "items") else value
    return [(str(k), str(v)) for k, v in items]


def read_credential(target: Any) -> list[str]:
    """What the target's reads authenticate with: its headers_env, its URL user-info."""
    found = ["headers_env"] if _pairs(getattr(target, "headers_env", None)) else []
    if "@" in urlsplit(getattr(target, "url", "")).netloc:
        found.append("URL user-info")
    return found


def missing_action_credential(target: Any) -> str:
    """Why an HTTP action on `target` cannot run ("" when it can).

    An action sends the target's `action_headers_env` headers, never the ones reads use: a
    target whose reads authenticate (headers_env, URL user-info) and that has no action
    credential runs no action, as a PostgreSQL target without action_dsn runs none. A target
    whose reads need no credential sends its actions without one."""
    for header, variable in _pairs(getattr(target, "action_headers_env", None)):
        if not os.environ.get(variable):
            return f"no action credential: environment variable {variable} (action_headers_env.{header}) is not set"
    if not _pairs(getattr(target, "action_headers_env", None)) and (reads := read_credential(target)):
        return (f"no action credential: set action_headers_env on this target "
                f"(reads send its {' and '.join(reads)}; actions never do)")
    return ""


def action_headers(target: Any, request: HttpRequest) -> dict[str, str]:
    """The headers an action is sent with: the block's, then the action credential's (masked
    everywhere: every value is remembered for `redact`)."""
    headers = {"User-Agent": _USER_AGENT, **dict(request.headers)}
    if request.body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = request.content_type
    for header, variable in _pairs(getattr(target, "action_headers_env", None)):
        value = os.environ.get(variable, "")
        if not value:
            raise PermissionError(f"{target.name}: {missing_action_credential(target)}")
        remember(value)
        headers[header] = value
    return headers


def describe(request: HttpRequest, target: Any, name: str) -> str:
    """`send POST http://127.0.0.1:8080/webhooks/redeliver (42 bytes of application/json) to
    api, with its action credential (Authorization)`: method, full URL (masked), body, target."""
    url = mask_url(request_url(request, target.url, name))
    used = [h for h, _ in _pairs(getattr(target, "action_headers_env", None))]
    credential = f", with its action credential ({', '.join(used)})" if used else ""
    return redact(f"send {request.method} {url} ({request.body_words()}) to {name}{credential}")


def _masked_headers(headers: Any) -> dict[str, str]:
    return {k: (MASK if secret_header(k) else redact(v)) for k, v in headers.items()}


def _answer(body: bytes, content_type: str, complete: bool) -> dict[str, Any]:
    """The answer's body for the step's data: bounded, masked, parsed when it is small JSON."""
    text = body.decode("utf-8", "replace")
    out: dict[str, Any] = {"bytes": len(body), "body_complete": complete}
    if complete and "json" in content_type.lower() and len(text) <= MAX_ANSWER_CHARS:
        try:
            out["json"] = json.loads(redact(text))
        except ValueError:
            pass  # not JSON after all: the text is kept below
    out["body"] = redact(text[:MAX_ANSWER_CHARS]) + ("..." if len(text) > MAX_ANSWER_CHARS or not complete else "")
    return out


async def send_action(target: Any, request: HttpRequest, name: str, timeout: float) -> dict[str, Any]:
    """Send the action once (no retry, no redirect, no proxy from the environment) and read
    at most MAX_ANSWER_BYTES of the answer: the step's names (status, value, data, summary).
    Raises on a failed request; the message never quotes a credential."""
    import httpx

    url = request_url(request, target.url, name)
    request_path(request, target.url, name)  # raises when a full URL leaves the target's origin
    headers = action_headers(target, request)
    started = time.perf_counter()
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
        try:
            async with client.stream(request.method, url, headers=headers,
                                     content=request.body_bytes if request.body else None) as response:
                body, complete = b"", True
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        body, complete = body[:MAX_ANSWER_BYTES], False
                        break
        except httpx.TimeoutException:
            raise TimeoutError(f"no answer within {timeout:g}s from {mask_url(url)} (it may have been received: "
                               "check before sending it again)") from None
        except httpx.HTTPError as exc:
            from probes.http import describe_error

            raise ConnectionError(describe_error(exc, url)) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    code = response.status_code
    data: dict[str, Any] = {"method": request.method, "url": mask_url(url), "status_code": code,
                            "headers": _masked_headers(response.headers), "elapsed_ms": round(elapsed_ms, 1),
                            **_answer(body, response.headers.get("content-type", ""), complete)}
    ok = 200 <= code < 300
    words = f"HTTP {code} {response.reason_phrase}".strip()
    if not ok:
        location = response.headers.get("location")
        words += f" -> {mask_url(location)}" if location and 300 <= code < 400 else ""
        snippet = " ".join(data["body"].split())[:120]
        words += f": {snippet}" if snippet else ""
    return {"status": "ok" if ok else "fail", "value": code, "data": data, "summary": words}
