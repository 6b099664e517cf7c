"""A tiny TOML writer for the sandbox's generated warroom.toml (tables, arrays of tables, scalars)."""

from __future__ import annotations

import json
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps(data: dict[str, Any], _prefix: str = "") -> str:
    """Serialise nested dicts; lists of dicts become arrays of tables."""
    lines: list[str] = []
    nested: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_scalar(value)}")
    out = "\n".join(lines)
    for key, value in nested:
        path = f"{_prefix}.{_key(key)}" if _prefix else _key(key)
        if isinstance(value, dict):
            body = dumps(value, path)
            out += f"\n\n[{path}]\n{body}" if body.strip() and not body.startswith("\n") else f"\n\n[{path}]{body}"
        else:
            for item in value:
                out += f"\n\n[[{path}]]\n{dumps(item, path)}"
    return out.strip("\n") + "\n" if not _prefix else out
