"""A Redis reply in words for a step's summary: `cursor 0 (scan complete), 3 keys: a, b, c`, never a repr."""

from __future__ import annotations

from typing import Any

SHOWN_ITEMS = 3
ITEM_CHARS = 40
SCANS = {"SCAN", "SSCAN", "HSCAN", "ZSCAN"}


def _item(value: Any) -> str:
    if value is None:
        return "(nil)"
    if isinstance(value, dict):
        # INFO keyspace's `db0: keys=242 expires=12 avg_ttl=0`, as Redis itself writes it.
        if 0 < len(value) <= SHOWN_ITEMS + 1 and all(not isinstance(v, dict | list | tuple) for v in value.values()):
            return " ".join(f"{k}={_item(v)}" for k, v in value.items())
        return f"{len(value)} field{'s' if len(value) != 1 else ''}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} item(s)]"
    text = " ".join(str(value).split())
    return text if len(text) <= ITEM_CHARS else text[: ITEM_CHARS - 1] + "…"


def _items(values: list[Any] | tuple[Any, ...], noun: str, nouns: str) -> str:
    if not values:
        return f"no {nouns}"
    shown = ", ".join(_item(v) for v in values[:SHOWN_ITEMS])
    more = f", … ({len(values) - SHOWN_ITEMS} more)" if len(values) > SHOWN_ITEMS else ""
    return f"{len(values)} {noun if len(values) == 1 else nouns}: {shown}{more}"


def reply_text(words: tuple[str, ...] | list[str], reply: Any) -> str:
    """What the operator reads after `SCAN 0:` / `LRANGE q 0 9:` / `HGETALL job:1:`."""
    command = words[0].upper() if words else ""
    if command in SCANS and isinstance(reply, list | tuple) and len(reply) == 2 and isinstance(reply[1], list | tuple):
        cursor = str(reply[0])
        where = "scan complete" if cursor == "0" else f"next cursor {cursor}"
        nouns = ("key", "keys") if command == "SCAN" else ("item", "items")  # HSCAN: fields and values
        return f"{_items(reply[1], *nouns)} ({where})"
    if reply is None:
        return "(nil)"
    if isinstance(reply, bool):
        return "yes" if reply else "no"
    if isinstance(reply, dict):
        if len(reply) > SHOWN_ITEMS:
            return f"{len(reply)} fields"
        return ", ".join(f"{k}: {_item(v)}" for k, v in reply.items()) or "no fields"
    if isinstance(reply, list | tuple):
        return _items(reply, "item", "items")
    text = str(reply)
    first = text.splitlines()[0] if text.strip() else "(empty)"
    return first if len(first) <= 120 else first[:119] + "…"
