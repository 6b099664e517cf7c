"""Where each key of a TOML document is written, so a config error can name its line."""

from __future__ import annotations

import json
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key_lines(text: str) -> dict[str, int]:
    """The line (from 1) of every key, by its path as the config validator names keys:
    `environments.prod.postgres[1].dsn`; a table also has the line of its header.

    tomllib keeps no positions, so this is a small scanner of its own: headers, key = value
    lines, and values that span lines (multi-line strings and arrays). Keys inside inline
    tables are not listed; a caller falls back to the enclosing key. Never raises.
    """
    try:
        return _scan(text)
    except Exception:  # noqa: BLE001 - a line number is a courtesy; the error must still be shown
        return {}


def _scan(text: str) -> dict[str, int]:
    explicit: dict[str, int] = {}
    implicit: dict[str, int] = {}  # parents only mentioned as prefixes of a longer key
    arrays: dict[str, int] = {}  # array-of-tables path -> elements so far
    current: list[str] = []
    multiline: str | None = None  # the closing quotes of an open multi-line string
    depth = 0  # brackets still open in a value that spans lines
    # TOML ends lines at \n only; str.splitlines() also splits at \x85, \u2028... inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if multiline or depth:
            multiline, depth = _value_state(line, 0, multiline, depth)
            continue
        stripped = line.lstrip()
        if stripped.startswith("["):
            array = stripped.startswith("[[")
            parsed = _key_parts(stripped[2 if array else 1 :])
            if parsed is None:
                continue
            parts = parsed[0]
            if array:
                path = _resolve(parts[:-1], arrays) + [parts[-1]]
                base = ".".join(path)
                index = arrays.get(base, 0)
                arrays[base] = index + 1
                path[-1] += f"[{index}]"
            else:
                path = _resolve(parts, arrays)
            current = path
            _record(explicit, implicit, path, number)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        parsed = _key_parts(stripped)
        if parsed is None or stripped[parsed[1] : parsed[1] + 1] != "=":
            continue
        _record(explicit, implicit, current + parsed[0], number)
        multiline, depth = _value_state(stripped, parsed[1] + 1, None, 0)
    return {**implicit, **explicit}


def _resolve(parts: list[str], arrays: dict[str, int]) -> list[str]:
    """A header's parts, each array of tables among them standing for its last element."""
    path: list[str] = []
    for part in parts:
        path.append(part)
        count = arrays.get(".".join(path))
        if count:
            path[-1] += f"[{count - 1}]"
    return path


def _record(explicit: dict[str, int], implicit: dict[str, int], path: list[str], number: int) -> None:
    for end in range(1, len(path)):
        implicit.setdefault(".".join(path[:end]), number)
    explicit.setdefault(".".join(path), number)


def _key_parts(text: str) -> tuple[list[str], int] | None:
    """A dotted key at the start of `text` (bare or quoted parts) and where it ends."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'":
            quote, j = text[i], i + 1
            while j < n and text[j] != quote:
                j += 2 if quote == '"' and text[j] == "\\" else 1
            if j >= n:
                return None
            part = text[i + 1 : j]
            if quote == '"':
                try:
                    part = json.loads(f'"{part}"')
                except ValueError:
                    pass  # an escape JSON lacks (\U0001F600): keep it as written
            parts.append(part)
            i = j + 1
        else:
            match = _BARE.match(text, i)
            if not match:
                return None
            parts.append(match[0])
            i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return parts, i


def _value_state(line: str, start: int, multiline: str | None, depth: int) -> tuple[str | None, int]:
    """After reading `line` from `start`: the multi-line string still open, brackets still open."""
    i, n = start, len(line)
    while i < n:
        if multiline:
            close = line.find(multiline, i)
            if close < 0:
                return multiline, depth
            i, multiline = close + 3, None
            continue
        char = line[i]
        if char in "\"'":
            if line.startswith(char * 3, i):
                multiline, i = char * 3, i + 3
                continue
            j = i + 1
            while j < n and line[j] != char:
                j += 2 if char == '"' and line[j] == "\\" else 1
            i = j + 1
            continue
        if char == "#":
            break
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        i += 1
    return multiline, depth
