"""What the HTTP probe reads in a response body: the JSON field it checks, after decompression."""

from __future__ import annotations

import json
import zlib
from typing import Any

from probes.config import HttpTarget

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
