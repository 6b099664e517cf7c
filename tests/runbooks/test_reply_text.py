"""Redis step summaries in words, never Python reprs: `SCAN 0: no keys (scan complete)`."""

from __future__ import annotations

import re
import time

import redis as syncredis

from runbooks.classify import split_command
from runbooks.commands import redis_call
from runbooks.reply_text import reply_text
from tests.conftest import SandboxHandle

REPR = re.compile(r"[\[\]{}]|'\w*':|\(\d+, \[")  # `[0, []]`, `{'a': 1}`, `(0, [`


def test_replies_in_words() -> None:
    assert reply_text(("SCAN", "0"), [0, []]) == "no keys (scan complete)"
    assert reply_text(("SCAN", "0"), ["17", ["a", "b", "c", "d"]]) == "4 keys: a, b, c, … (1 more) (next cursor 17)"
    assert reply_text(("HSCAN", "h", "0"), ["0", ["f", "v"]]) == "2 items: f, v (scan complete)"
    assert reply_text(("LRANGE", "q", "0", "0"), ["only"]) == "1 item: only"
    assert reply_text(("GET", "k"), None) == "(nil)"
    assert reply_text(("LRANGE", "q", "0", "9"), [{"a": 1}, [1, 2], None]) == "3 items: a=1, [2 item(s)], (nil)"
    # INFO keyspace reads as Redis writes it, never as a count of fields (seen: `db0: {3 field(s)}`).
    assert reply_text(("INFO", "keyspace"), {"db0": {"keys": 242, "expires": 12, "avg_ttl": 0}}) == "db0: keys=242 expires=12 avg_ttl=0"
    assert reply_text(("HGETALL", "h"), {"a": {str(i): i for i in range(9)}}) == "a: 9 fields"
    assert reply_text(("HGETALL", "h"), {"a": "1", "b": "x" * 80}) == f"a: 1, b: {'x' * 39}…"
    assert reply_text(("HGETALL", "h"), {str(i): i for i in range(5)}) == "5 fields"
    assert reply_text(("LLEN", "q"), 42) == "42" and reply_text(("PING",), True) == "yes"
    assert reply_text(("INFO",), "# Server\r\nredis_version:6.2") == "# Server"


async def test_sandbox_redis_steps_summarise_replies_in_words(sandbox: SandboxHandle) -> None:
    target = next(t for t in sandbox.env.redis if t.name == "redis")
    admin = syncredis.Redis.from_url(sandbox.admin_dsn("redis"))  # the read user cannot write
    unique = f"replytest{time.monotonic_ns()}"
    try:
        admin.rpush(f"{unique}:list", "one", "two")
        admin.hset(f"{unique}:hash", mapping={"a": 1})
        commands = {
            "scan": f"SCAN 0 MATCH {unique}:* COUNT 1000", "none": f"SCAN 0 MATCH {unique}-none:* COUNT 1000",
            "lrange": f"LRANGE {unique}:list 0 9", "hgetall": f"HGETALL {unique}:hash", "get": f"GET {unique}:missing",
            "llen": f"LLEN {unique}:list",
        }
        summaries = {}
        for name, command in commands.items():
            summaries[name] = (await redis_call(target, tuple(split_command(command)), command, 2.0))["summary"]
            assert not REPR.search(summaries[name].split(": ", 1)[1]), summaries[name]
        # COUNT is a hint: one SCAN call may see the two keys, or not yet; either way in words.
        assert re.fullmatch(rf"SCAN 0: (\d keys?: {unique}:\w+(, {unique}:\w+)?|no keys) \((scan complete|next cursor \d+)\)",
                            summaries["scan"]), summaries["scan"]
        assert re.fullmatch(r"SCAN 0: no keys \((scan complete|next cursor \d+)\)", summaries["none"]), summaries["none"]
        assert summaries["lrange"] == f"LRANGE {unique}:list: 2 items: one, two"
        assert summaries["hgetall"] == f"HGETALL {unique}:hash: a: 1"
        assert summaries["get"] == f"GET {unique}:missing: (nil)"
        assert summaries["llen"] == f"LLEN {unique}:list: 2"
    finally:
        admin.delete(f"{unique}:list", f"{unique}:hash")
        admin.close()
