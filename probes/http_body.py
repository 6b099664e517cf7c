"""What the HTTP probe reads in a response body: the JSON field it checks, after decompression,
and the key fields of a failing answer (`upstream: failing`)."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from probes.config import HttpTarget
from probes.secrets import MASK, redact

# Health endpoints are small; never download more than this per refresh.
MAX_BODY_BYTES = 1024 * 1024
_MISSING = object()


def json_lookup(document: Any, path: str) -> Any:
    """`document` at a dotted path ("status.indicator", "checks.0.name"); _MISSING when absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def json_check(target: HttpTarget, body: bytes) -> tuple[bool | None, Any, str | None]:
    """(json_ok, value seen, problem) for the endpoint's json_field/json_equals check."""
    if not target.json_field:
        return None, None, None
    try:
        document = json.loads(body)
    except ValueError:
        return False, None, f"{target.json_field}: response is not JSON"
    seen = json_lookup(document, target.json_field)
    if seen is _MISSING:
        return False, None, f"{target.json_field} missing from the response"
    if target.json_equals is not None and seen != target.json_equals:
        return (
            False,
            seen,
            f"{target.json_field} == {json.dumps(seen, default=str)} (expected {json.dumps(target.json_equals, default=str)})",
        )
    return True, seen, None


def decoded(body: bytes, encoding: str) -> bytes:
    """The body as sent before compression: asked for identity, a server may compress anyway."""
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding.strip().lower())
    if wbits is None or not body:
        return body
    try:
        return zlib.decompressobj(wbits).decompress(body, MAX_BODY_BYTES)
    except zlib.error:
        return body


# --- what a failing answer says about itself ---------------------------------------------------
# A 503 body (`{"status": "degraded", "checks": {"upstream": "failing"}}`) or a status page's
# own words (`status.description`) often name the cause: the probe keeps a few of its fields.

MAX_FIELDS = 8  # kept in data["body_fields"]
SHOWN_FIELDS = 2  # of those, in the summary
FIELD_CHARS = 120
TEXT_CHARS = 100
_TELLING = ("error", "errors", "message", "reason", "detail", "details", "description", "cause", "title")
_STATE_WORDS = ("status", "state", "indicator", "health", "result")
_BAD_WORDS = ("fail", "error", "down", "degraded", "major", "critical", "unhealthy", "timeout", "timed out",
              "unavailable", "outage", "unreachable", "refused", "partial", "minor", "maintenance", "broken")
_SECRET_KEYS = ("password", "passwd", "secret", "token", "apikey", "api_key", "auth", "cookie", "session", "credential",
                "private", "signature")
_TAGS = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


def _scalar_fields(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Scalar fields at the top level and one level down, in document order: `path`, value."""
    found: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            found += [(f"{key}.{k}", v) for k, v in value.items() if _is_scalar(v)]
        elif _is_scalar(value):
            found.append((str(key), value))
        if len(found) >= 4 * MAX_FIELDS:
            break
    return found


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _shown_value(path: str, value: Any) -> Any:
    name = path.rsplit(".", 1)[-1].lower().replace("-", "_")
    if any(word in name for word in _SECRET_KEYS):
        return MASK
    if isinstance(value, str):
        value = " ".join(value.split())
        value = redact(value if len(value) <= FIELD_CHARS else value[: FIELD_CHARS - 1] + "…")
    return value


def _rank(path: str, value: Any) -> int | None:
    """How telling a field is for the summary (lower first); None: not worth showing."""
    name = path.rsplit(".", 1)[-1].lower()
    text = str(value).lower()
    bad = isinstance(value, str) and any(word in text for word in _BAD_WORDS) or value is False
    if name in _TELLING and value not in (None, "", False):
        return 0
    if bad and name not in _STATE_WORDS:
        return 1  # a component that is failing: `upstream: failing`
    if bad:
        return 2  # the overall verdict: `status: degraded`
    return None


def body_fields(target: HttpTarget, body: bytes, content_type: str) -> tuple[dict[str, Any], str]:
    """(fields kept, their summary) from a failing answer's body. JSON: scalar fields at the top
    level and one level down, secrets masked (the json_field checked is in the summary already);
    text: its first line (an HTML page's title)."""
    text = body[: MAX_BODY_BYTES].decode("utf-8", "replace").strip()
    if not text:
        return {}, ""
    document: Any = None
    if text[:1] in "{[":
        try:
            document = json.loads(text)
        except ValueError:
            document = None
    if isinstance(document, dict):
        fields = [(p, _shown_value(p, v)) for p, v in _scalar_fields(document) if p != target.json_field]
        ranked = sorted((rank, i, p) for i, (p, v) in enumerate(fields) if (rank := _rank(p, v)) is not None)
        values = dict(fields)
        chosen = [p for _, _, p in ranked[:SHOWN_FIELDS]]
        kept = {p: values[p] for p in chosen} | dict(fields[: MAX_FIELDS - len(chosen)])
        shown = [f"{p.rsplit('.', 1)[-1]}: {v if isinstance(v := values[p], str) else json.dumps(v)}" for p in chosen]
        return kept, ", ".join(shown)
    if document is not None:
        return {}, ""  # a JSON list or scalar: nothing named to show
    if "html" in content_type.lower() or text[:1] == "<":
        title = _TITLE.search(text)
        text = title[1] if title else _TAGS.sub(" ", text)
    line = next((" ".join(ln.split()) for ln in text.splitlines() if ln.strip()), "")
    line = redact(line if len(line) <= TEXT_CHARS else line[: TEXT_CHARS - 1] + "…")
    return ({"body": line}, f"body: {line}") if line else ({}, "")


def body_note(target: HttpTarget, data: dict[str, Any], body: bytes, content_type: str) -> str:
    """For an unexpected 4xx/5xx or a failed json_field check: keep the body's key fields in
    `data["body_fields"]` (and their summary in `data["body_note"]`); return ` · upstream:
    failing` for the probe's summary ("" otherwise)."""
    code = data.get("status_code") or 0
    failing = (code not in target.expect_status and code >= 400) or data.get("json_ok") is False
    if not failing or target.method == "HEAD":
        return ""
    fields, shown = body_fields(target, body, content_type)
    if fields:
        data["body_fields"] = fields
    if shown:
        data["body_note"] = shown  # panes show it next to the status code
    return f" · {shown}" if shown else ""


MAX_JSON_ITEMS = 5000  # values kept in data["json"]; the rest of a big document is cut


def masked_json(document: Any) -> Any:
    """A parsed JSON body fit for data["json"]: fields naming a secret masked, strings redacted,
    at most MAX_JSON_ITEMS values (a longer list or object is cut, not dropped)."""
    budget = [MAX_JSON_ITEMS]

    def walk(value: Any, name: str = "") -> Any:
        budget[0] -= 1
        if name and any(word in name.lower().replace("-", "_") for word in _SECRET_KEYS) and _is_scalar(value):
            return MASK if value not in (None, "") else value
        if isinstance(value, dict):
            return {str(k): walk(v, str(k)) for k, v in value.items() if budget[0] > 0}
        if isinstance(value, list):
            return [walk(v) for v in value if budget[0] > 0]
        return redact(value) if isinstance(value, str) else value

    return walk(document)


MAX_SAMPLES = 5000  # of a /metrics exposition kept in data["metrics"]


def parse_metrics(text: str) -> dict[str, Any]:
    """A Prometheus text exposition as {"samples": [{name, labels, value}], "families": n,
    "truncated": bool}, parsed by prometheus_client; ValueError when it is not one."""
    from prometheus_client.parser import (
        text_string_to_metric_families,  # lazy: only /metrics targets
    )

    samples: list[dict[str, Any]] = []
    families = 0
    truncated = False
    for family in text_string_to_metric_families(text):
        families += 1
        for sample in family.samples:
            if len(samples) >= MAX_SAMPLES:
                truncated = True
                break
            labels = {k: redact(v)[:FIELD_CHARS] for k, v in sample.labels.items()}
            samples.append({"name": sample.name, "labels": labels, "value": sample.value})
    return {"samples": samples, "families": families, "truncated": truncated}
