"""```http blocks and the HTTP keys of `probe: http` blocks: parsed, checked, aimed at a target.

A block holds a request line (`POST /webhooks/redeliver`, or a full URL on the target's own
origin), optional `Name: value` header lines, a blank line and an optional body. GET, HEAD and
OPTIONS are reads (run through the HTTP probe); every other method is an action. Secrets never
come from the runbook text: a header that carries one (Authorization, Cookie, X-Api-Key, any
name with token / secret / key / auth in it), URL user-info or a secret query parameter is a
load problem that says to use the target's `headers_env` (reads) / `action_headers_env` (actions).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from probes.secrets import redact, secret_param
from runbooks.conditions import ConditionError, placeholder, template_fields
from runbooks.front_matter import Problems
from runbooks.verdict import Classification

READ_METHODS = ("GET", "HEAD", "OPTIONS")
# TRACE echoes the request (headers from headers_env included) back into the step's data;
# CONNECT opens a tunnel. Neither is a check nor an action a runbook needs.
REFUSED_METHODS = {"TRACE": "TRACE echoes the request, credential headers included",
                   "CONNECT": "CONNECT opens a tunnel, not a request"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a method or a header name
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
_SECRET_PARTS = ("token", "secret", "key", "auth", "password", "session")
# Set by the HTTP client from the request itself; a runbook setting them would lie about it.
_SCHEME_VALUE = re.compile(r"(?i)\s*(bearer|basic|token|digest|negotiate|apikey)\s+\S")  # an auth scheme's value
_CLIENT_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "expect"}
# `probe: http` block keys that override the config target for that step (probes.config_http).
PROBE_HTTP_KEYS = ("method", "path", "headers", "expect_status", "expect_headers", "format",
                   "body_contains", "body_matches")
MAX_BODY_CHARS = 100_000  # of a request body written in a runbook


class RequestError(ValueError):
    """A request that cannot be sent as written; `line` is its line within the block (1-based)."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request of an ```http block (after its templates are filled, or with placeholders)."""

    method: str
    target: str  # "/path?query" or a full http(s) URL
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""

    @property
    def is_read(self) -> bool:
        return self.method in READ_METHODS

    @property
    def content_type(self) -> str:
        """The Content-Type it is sent with: the block's own, else JSON when the body parses."""
        given = next((v for k, v in self.headers if k.lower() == "content-type"), "")
        if given or not self.body:
            return given
        try:
            json.loads(self.body)
        except ValueError:
            return "text/plain; charset=utf-8"
        return "application/json"

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8")

    def body_words(self) -> str:
        """`no body` or `42 bytes of application/json`, for the confirmation."""
        size = len(self.body_bytes)
        if not size:
            return "no body"
        return f"{size} byte{'s' if size != 1 else ''} of {self.content_type.split(';')[0]}"


def secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential (so only the config may set it)."""
    low = name.lower()
    return low in SECRET_HEADERS or any(part in low for part in _SECRET_PARTS)


def header_problem(name: str, value: Any) -> str:
    """Why a header written in a runbook may not be sent, or ""."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {str(name)[:40]!r} is not a valid HTTP header name"
    if secret_header(name):
        return (f"header {name}: credentials never come from the runbook text; "
                "set it in the target's headers_env (reads) or action_headers_env (actions)")
    if name.lower() in _CLIENT_HEADERS:
        return f"header {name} is set by warroom from the request itself"
    if not isinstance(value, str):
        return f"header {name}: expected a string value, got {type(value).__name__}"
    if "\r" in value or "\n" in value:
        return f"header {name}: the value may not hold a line break"
    if _SCHEME_VALUE.match(value) or redact(f"{name}: {value}") != f"{name}: {value}" or redact(value) != value:
        return f"header {name}: the value looks like a credential; set it in the target's headers_env"
    return ""


def _target_problem(target: str) -> str:
    """Why a request line's target may not be sent as written, or ""."""
    if target.startswith("/"):
        parts = urlsplit(target)
    elif re.match(r"(?i)https?://", target):
        parts = urlsplit(target)
        if not parts.hostname:
            return f"{target[:80]!r}: the URL names no host"
        if "@" in parts.netloc:
            return "the URL carries user-info (a credential): set it in the target's headers_env"
    else:
        return f"{target[:80]!r}: expected a path starting with / or a full http(s) URL on the target's origin"
    if parts.fragment:
        return "a fragment (#...) is never sent; leave it out"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if secret_param(name):
            return f"query parameter {name!r} carries a credential: set it in the target's headers_env"
    if redact(target) != target:
        return "the URL looks like it carries a credential: set it in the target's headers_env"
    return ""


def parse_request(text: str) -> HttpRequest:
    """The request of a block's text; RequestError naming the line when it is not one."""
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise RequestError("the block holds no request (expected e.g. `POST /webhooks/redeliver`)")
    words = lines[first].split()
    if len(words) == 3 and re.fullmatch(r"HTTP/\d(\.\d)?", words[2]):
        words = words[:2]  # `POST /path HTTP/1.1`, as copied from a capture
    if len(words) != 2:
        raise RequestError(f"request line {lines[first].strip()[:80]!r}: expected METHOD /path (or METHOD URL)", first + 1)
    method, target = words[0].upper(), words[1]
    if not _TOKEN.fullmatch(method) or not method.isalpha():
        raise RequestError(f"unknown method {words[0][:20]!r} (GET, HEAD, OPTIONS read; POST, PUT, PATCH, DELETE act)", first + 1)
    if method in REFUSED_METHODS:
        raise RequestError(f"method {method} is refused: {REFUSED_METHODS[method]}", first + 1)
    if why := _target_problem(target):
        raise RequestError(why, first + 1)
    headers: list[tuple[str, str]] = []
    index = first + 1
    while index < len(lines) and lines[index].strip():
        line = lines[index].rstrip("\r")
        name, sep, value = line.partition(":")
        if line[:1] in (" ", "\t"):
            raise RequestError("a header line may not be continued on the next line", index + 1)
        if not sep:
            raise RequestError(f"header line {line.strip()[:60]!r}: expected `Name: value`", index + 1)
        if "{{" in name:
            raise RequestError("a header name cannot be a template", index + 1)
        if why := header_problem(name.strip(), value.strip()):
            raise RequestError(why, index + 1)
        headers.append((name.strip(), value.strip()))
        index += 1
    body = "\n".join(lines[index + 1:]).strip("\n") if index < len(lines) else ""
    if len(body) > MAX_BODY_CHARS:
        raise RequestError(f"the body is over {MAX_BODY_CHARS} characters; keep a runbook's request small", index + 2)
    if body and redact(body) != body:
        raise RequestError("the body looks like it carries a credential (password, token, key): "
                           "credentials come only from the target's headers_env / action_headers_env", index + 2)
    return HttpRequest(method, target, tuple(headers), body)


# --- aiming a request at a config target -----------------------------------------------------


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port made explicit; user-info left out."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    shown = f"[{host}]" if ":" in host else host
    default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    return f"{scheme}://{shown}" + ("" if default else f":{port}")


def request_path(request: HttpRequest, target_url: str, target_name: str) -> str:
    """The path (with query) to send on the target's origin; ValueError when a full URL in the
    request line points anywhere else (a runbook cannot send the target's credential elsewhere)."""
    if request.target.startswith("/"):
        return request.target
    if origin(request.target) != origin(target_url):
        raise ValueError(f"{request.target.split('?')[0][:80]} is not on {target_name}'s origin "
                         f"{origin_text(target_url)}: a request goes to its target only")
    parts = urlsplit(request.target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def request_url(request: HttpRequest, target_url: str, target_name: str) -> str:
    """The full URL the request goes to (without any user-info of the target URL)."""
    return origin_text(target_url) + request_path(request, target_url, target_name)


def probe_keys_problem(settings: dict[str, Any]) -> str:
    """Why the HTTP keys of a `probe: http` block cannot be used, before the typed checks of
    probes.config_http ("" when they can): the headers a runbook may set, no headers_env."""
    if "headers_env" in settings:
        return "headers_env belongs to the target in the config: a runbook does not choose which secrets are sent"
    headers = settings.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if why := header_problem(name, value):
                return f"headers: {why}"
    path = settings.get("path")
    if isinstance(path, str) and (why := _target_problem(path) if path.startswith("/") else
                                  f"path {path[:60]!r}: expected a path starting with /"):
        return f"path: {why}"
    return ""


# --- load-time checks (runbooks.loader) ---------------------------------------------------


def check_http_block(out: dict[str, Any], first_line: int, problems: Problems) -> str:
    """Check an ```http block's request; its kind: "http" (a read) or "action"."""
    command = out.get("command", "")
    if not command.strip():
        problems.add(out["line"], "```http: the block holds no request (expected e.g. `POST /webhooks/redeliver`)")
        return "http"
    try:
        template_fields(command)
        request = parse_request(placeholder(command))
    except ConditionError as exc:
        problems.add(first_line, f"```http: {exc}")
        return "http"
    except RequestError as exc:
        problems.add(first_line + exc.line - 1, f"```http: {exc}")
        return "http"
    out["request"] = request
    if request.is_read:
        out["classification"] = Classification("read", f"HTTP {request.method} reads (run through the HTTP probe)")
        return "http"
    out["classification"] = Classification("action", f"HTTP {request.method} may change the target (only GET, HEAD and OPTIONS read)")
    return "action"


def check_probe_http_keys(s: dict[str, Any], target: str, line: int, problems: Problems) -> tuple[tuple[str, Any], ...]:
    """The HTTP keys of a `probe: http` block, checked as the config checks them (over a
    stand-in for the target, which only the config names)."""
    raw = {k: s[k] for k in (*PROBE_HTTP_KEYS, "headers_env") if k in s}
    if not raw:
        return ()
    if why := probe_keys_problem(raw):
        problems.add(line, f"probe block: {why}")
        return ()
    try:
        from probes.config import ConfigError, HttpTarget
        from probes.config_http import http_target
    except ImportError:  # pragma: no cover - probes.config_http is being written alongside
        return tuple(raw.items())
    try:
        http_target(raw, "probe block", base=HttpTarget(name=target or "runbook", url="http://target.invalid/"))
    except ConfigError as exc:
        problems.add(line, f"{exc.key}: {exc.expected}" if exc.key else exc.expected)
        return ()
    return tuple(raw.items())
