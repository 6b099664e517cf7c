"""Redis reads are bounded however they are written, and CONFIG GET never shows a secret.

The classification tables need no server; the reply-side caps, the HGETALL size check and the
masking run against real redis-server processes: a private one started here (with a password
and a masterauth, so there is something to leak) and the sandbox's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis

from probes.config import Environment, RedisTarget
from runbooks.classify import MAX_RANGE, MAX_SCAN_COUNT, classify_redis
from runbooks.commands import MAX_REPLY_ITEMS, redis_call, redis_reply, secret_parameter
from runbooks.journal import Journal
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import Outcome, RunContext, StepOutcome, run_step
from tests.conftest import SandboxHandle
from tui.sandbox.base import LOOPBACK
from tui.sandbox.redis import start_server, stop_process

PASSWORD = f"pw-{secrets.token_hex(8)}"
MASTERAUTH = f"ma-{secrets.token_hex(8)}"

# --- classification: what the server would do decides -----------------------------------------

BOUNDED_READS = [
    "SCAN 0 COUNT 100", "scan 0 match q:* count 1000", "SCAN 0 MATCH COUNT COUNT 10",  # a pattern named COUNT
    "SCAN 0 COUNT 10 TYPE hash", "SSCAN s 0 COUNT 10", "hscan h 0 MATCH f* COUNT 1000",
    "HSCAN h 0 NOVALUES COUNT 5", "ZSCAN z 0 COUNT 1",
    "LRANGE q 0 999", "LRANGE q -1000 -1", "lrange q 5 5",
    "ZRANGE z 0 99", "ZRANGE z 0 99 REV WITHSCORES", "ZRANGE z -10 -1",
    "ZRANGE z -inf +inf BYSCORE LIMIT 0 1000", "zrange z (1 5 byscore rev limit 10 0", "ZRANGE z - + BYLEX LIMIT 0 100",
    "XRANGE s - + COUNT 1000", "xrevrange s + - count 1",
    "XINFO STREAM s", "XINFO STREAM s FULL COUNT 1000", "xinfo stream s full count 5",
    "SLOWLOG GET", "SLOWLOG GET 0", "slowlog get 1000", "XPENDING s g", "XPENDING s g - + 1000",
    "XPENDING s g IDLE 5000 - + 10 consumer-1", "MEMORY USAGE k", "MEMORY USAGE k SAMPLES 5",
    "CLIENT LIST", "client list type normal", "CONFIG GET *", "config get *pass*", "OBJECT HELP",
    "MEMORY DOCTOR", "LATENCY DOCTOR", "HGETALL h",
]
# (command, words the reason must contain)
UNBOUNDED = [
    ("SCAN 0", "COUNT"), ("SCAN 0 MATCH x", "COUNT"), ("SCAN 0 COUNT 10 COUNT 100000", "COUNT given twice"),
    ("scan 0 count 10 count 10", "obeys the last"), ("SCAN 0 COUNT 0", "from 1 to 1000"),
    ("SCAN 0 COUNT 1001", "from 1 to 1000"), ("SCAN 0 COUNT -1", "from 1 to 1000"), ("SCAN 0 COUNT ²", "whole number"),
    ("SCAN 0 COUNT", "needs a value"), ("SCAN cursor COUNT 10", "cursor"), ("SCAN 0 COUNT 10 BOGUS 1", "unexpected"),
    ("SSCAN s 0", "COUNT"), ("HSCAN h 0 COUNT 5000", "from 1 to 1000"), ("ZSCAN z 0 COUNT 5 COUNT 5", "twice"),
    ("SSCAN s 0 TYPE set COUNT 5", "unexpected"),
    ("LRANGE q 0 -1", "whole key"), ("LRANGE q 0 1000", "over 1000"), ("LRANGE q -5000 -1", "over 1000"),
    ("LRANGE q a b", "whole numbers"), ("LRANGE q 0", "start stop"),
    ("ZRANGE z 0 -1", "whole key"), ("ZRANGE z 0 -1 REV", "whole key"), ("ZRANGE z 0 5000 WITHSCORES", "over 1000"),
    ("ZRANGE z -inf +inf BYSCORE", "LIMIT"), ("ZRANGE z - + BYLEX REV", "LIMIT"),
    ("ZRANGE z -inf +inf BYSCORE LIMIT 0 -1", "negative count means all"),
    ("ZRANGE z -inf +inf BYSCORE LIMIT 0 5000", "count from 0 to 1000"),
    ("ZRANGE z 0 10 LIMIT 0 5", "BYSCORE or BYLEX"), ("ZRANGE z 0 10 BYSCORE BYLEX LIMIT 0 1", "exclude"),
    ("ZRANGE z 0 1 REV REV", "twice"),
    ("XRANGE s - +", "COUNT"), ("XREVRANGE s + -", "COUNT"), ("XRANGE s - + COUNT 0", "from 1 to 1000"),
    ("XRANGE s - + COUNT 10 COUNT 100000", "twice"), ("XRANGE s - + COUNT 1001", "from 1 to 1000"),
    ("XINFO STREAM s FULL", "COUNT"), ("XINFO STREAM s FULL COUNT 0", "from 1 to 1000"),
    ("XINFO STREAM s FULL COUNT 10 COUNT 0", "twice"), ("XINFO STREAM s COUNT 5", "unexpected"),
    ("SLOWLOG GET -1", "whole log"), ("SLOWLOG GET 1001", "0 to 1000"),
    ("XPENDING s g - + 100000", "0 to 1000"), ("XPENDING s g IDLE 10", "XPENDING key group"),
    ("MEMORY USAGE k SAMPLES 0", "from 1 to 1000"),
    ("CLIENT", "needs a subcommand"), ("config", "needs a subcommand"),
]
ACTIONS = [
    "CONFIG SET maxmemory 1gb", "CONFIG RESETSTAT", "CONFIG REWRITE", "CLIENT KILL ID 5",
    "client pause 100", "SLOWLOG RESET", "LATENCY RESET", "MEMORY PURGE", "SMEMBERS s", "HKEYS h",
    "ZREVRANGE z 0 -1", "OBJECT FOO k",
]
REFUSED = ["KEYS *", "keys *", "DEBUG SLEEP 0", "debug object k", "MONITOR", "BLPOP q 0", "XREAD COUNT 1 STREAMS s 0"]


@pytest.mark.parametrize("command", BOUNDED_READS)
def test_bounded_reads_are_reads(command: str) -> None:
    verdict = classify_redis(shlex.split(command))
    assert verdict.verdict == "read", verdict.reason


@pytest.mark.parametrize(("command", "words"), UNBOUNDED)
def test_unbounded_reads_are_refused_with_what_to_write(command: str, words: str) -> None:
    verdict = classify_redis(shlex.split(command))
    assert verdict.verdict == "refused", verdict
    assert words in verdict.reason, verdict.reason


@pytest.mark.parametrize("command", ACTIONS)
def test_state_changes_and_unlisted_reads_are_actions(command: str) -> None:
    assert classify_redis(shlex.split(command)).verdict == "action"


@pytest.mark.parametrize("command", REFUSED)
def test_blocking_and_dangerous_commands_are_refused(command: str) -> None:
    assert classify_redis(shlex.split(command)).verdict == "refused"


def test_the_limits_are_a_thousand() -> None:
    assert MAX_SCAN_COUNT == MAX_RANGE == MAX_REPLY_ITEMS == 1000


def test_secret_parameters_by_name() -> None:
    for name in ("requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass", "REQUIREPASS", "some-new-secret"):
        assert secret_parameter(name), name
    for name in ("masteruser", "tls-auth-clients", "maxmemory", "timeout", "port"):
        assert not secret_parameter(name), name


# --- redis-cli options are load errors with a hint -------------------------------------------

FRONT = "---\nid: cli\ntitle: cli\nseverity: low\n---\n"


@pytest.mark.parametrize(
    ("command", "named", "hint"),
    [
        ("--bigkeys", "--bigkeys", "SCAN 0 COUNT 100"), ("--memkeys", "--memkeys", "MEMORY USAGE"),
        ("--latency", "--latency", "LATENCY LATEST"), ("--latency-history", "--latency-history", "LATENCY HISTORY"),
        ("--stat", "--stat", "INFO stats"), ("--scan --pattern 'q:*'", "--scan", "SCAN 0 MATCH"),
        ("redis-cli --bigkeys", "--bigkeys", "SCAN 0 COUNT 100"),
        ("redis-cli -h 127.0.0.1 -p 6379 INFO", "-h", "target="),
        ("REDIS-CLI INFO memory", "redis-cli", "write only the Redis command"),
        ("-a hunter2 PING", "-a", "target="), ("--pass=hunter2 PING", "--pass", "target="),
        ("--no-such-flag", "--no-such-flag", "```sh block"),
    ],
)
def test_redis_cli_options_are_load_errors_naming_file_and_line(command: str, named: str, hint: str) -> None:
    text = f"{FRONT}# cli\n\n1. **Look.**\n   ```redis target=cache\n   {command}\n   ```\n"
    rb, problems = parse_runbook(text, "cli.md")
    assert rb is None and len(problems) == 1, problems
    message = str(problems[0])
    assert message.startswith(f"cli.md:9: ```redis: refused: {named} is ")
    assert hint in message
    assert "hunter2" not in message  # a password on the line is never echoed


# --- a private server with secrets ------------------------------------------------------------


class Server:
    def __init__(self, process: Any, port: int) -> None:
        self.process, self.port = process, port
        self.client = syncredis.Redis(host=LOOPBACK, port=port, password=PASSWORD, decode_responses=True)
        self.url = f"redis://:{PASSWORD}@{LOOPBACK}:{port}/0"

    def env(self) -> Environment:
        # Built directly, not from a config file, so probes.secrets has not learnt PASSWORD: the
        # masking below is the reply handling's own, not the text redaction's.
        return Environment("lab", redis=(RedisTarget("cache", self.url, discover=False),))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # intsets up to 10,000 members: SSCAN then answers with the whole set whatever its COUNT.
    extra = (f"requirepass {PASSWORD}", f"masterauth {MASTERAUTH}", "set-max-intset-entries 10000")
    process, port = asyncio.run(start_server(tmp_path_factory.mktemp("redis-secrets"), *extra))
    started = Server(process, port)
    yield started
    started.client.close()
    stop_process(process)


def _one_step(command: str, tmp_path: Path, target: str = "cache", **settings: str) -> tuple[Runbook, RunContext, Journal]:
    extra = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items())
    text = f"{FRONT}# r\n\n1. **Read.**\n   ```redis target={target} id=read {extra}\n   {command}\n   ```\n"
    rb, problems = parse_runbook(text, "r.md")
    assert rb is not None, problems
    journal = Journal(tmp_path / "journal.sqlite3")
    return rb, RunContext(rb.id, journal=journal, incident_id=journal.start_incident("lab", [rb.id])), journal


def _nowhere(tmp_path: Path, outcome: StepOutcome, journal: Journal, context: RunContext, *secrets_: str) -> None:
    """None of `secrets_` in the outcome, its JSON, the journal's events or its files."""
    shown = json.dumps(outcome.to_json()) + json.dumps([e.to_json() for e in journal.events(context.incident_id)])
    journal.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("journal"))
    for secret in secrets_:
        assert secret not in shown and secret.encode() not in stored


@pytest.mark.parametrize("command", ["CONFIG GET *", "CONFIG GET *pass*", "config get *auth*", "CONFIG GET requirepass", "CONFIG GET masterauth"])
async def test_config_get_masks_secret_parameters(server: Server, command: str, tmp_path: Path) -> None:
    assert server.client.config_get("masterauth") == {"masterauth": MASTERAUTH}  # there is a secret to leak
    rb, context, journal = _one_step(command, tmp_path)
    outcome = await run_step(rb.steps[0], server.env(), context=context)
    assert outcome.status == Outcome.PASS, outcome.summary
    secret_keys = [k for k in outcome.data if k in ("requirepass", "masterauth")]
    assert secret_keys and all(outcome.data[k] == "****" for k in secret_keys)
    if command == "CONFIG GET *":
        assert outcome.data["maxmemory-policy"] == "noeviction"  # the rest is shown as it is
    _nowhere(tmp_path, outcome, journal, context, PASSWORD, MASTERAUTH)


async def test_config_get_of_several_parameters_masks_each_or_fails_cleanly(server: Server, tmp_path: Path) -> None:
    # Redis 7 accepts several parameters; the sandbox's 6.2 answers with an error: either way
    # neither secret shows.
    rb, context, journal = _one_step("CONFIG GET requirepass masterauth", tmp_path)
    outcome = await run_step(rb.steps[0], server.env(), context=context)
    if outcome.status == Outcome.PASS:
        assert outcome.data == {"requirepass": "****", "masterauth": "****"}
    else:
        assert outcome.status == Outcome.ERROR and "wrong number of arguments" in outcome.summary
    _nowhere(tmp_path, outcome, journal, context, PASSWORD, MASTERAUTH)


async def test_config_get_masks_resp2_replies_too(server: Server) -> None:
    # The same server asked over RESP2 answers CONFIG GET with a flat name, value list.
    client = syncredis.Redis(host=LOOPBACK, port=server.port, password=PASSWORD, decode_responses=True, protocol=2)
    raw = client.execute_command("CONFIG", "GET", "*pass*")
    client.close()
    assert isinstance(raw, list) and PASSWORD in raw
    reply = redis_reply(("CONFIG", "GET", "*pass*"), raw)
    assert reply["data"]["reply"][reply["data"]["reply"].index("requirepass") + 1] == "****"
    assert PASSWORD not in json.dumps(reply)


async def test_scan_count_is_a_hint_so_the_reply_is_capped(server: Server) -> None:
    key = f"intset-{secrets.token_hex(3)}"
    server.client.sadd(key, *range(5000))
    try:
        assert server.client.object("encoding", key) == "intset"
        assert len(server.client.sscan(key, 0, count=10)[1]) == 5000  # Redis ignores COUNT here
        reply = await redis_call(server.env().redis[0], (), f"SSCAN {key} 0 COUNT 10", 5.0)
    finally:
        server.client.delete(key)
    cursor, members = reply["data"]["reply"]
    assert len(members) == MAX_REPLY_ITEMS and reply["data"]["omitted"] == 4000
    assert "reply cut: 4000 more item(s)" in reply["summary"]


async def test_hgetall_of_a_big_hash_is_refused_before_it_is_sent(server: Server, tmp_path: Path) -> None:
    small, big = f"small-{secrets.token_hex(3)}", f"big-{secrets.token_hex(3)}"
    server.client.hset(small, mapping={f"f{i}": i for i in range(10)})
    server.client.hset(big, mapping={f"f{i}": i for i in range(MAX_REPLY_ITEMS + 1)})
    try:
        rb, context, journal = _one_step(f"HGETALL {small}", tmp_path, **{"pass": "len(data) == 10"})
        assert (await run_step(rb.steps[0], server.env(), context=context)).status == Outcome.PASS
        rb, context, journal = _one_step(f"HGETALL {big}", tmp_path)
        refused = await run_step(rb.steps[0], server.env(), context=context)
    finally:
        server.client.delete(small, big)
    assert refused.status == Outcome.REFUSED
    assert "1001 items (over 1000); use HSCAN key 0 COUNT 100" in refused.summary


async def test_client_list_is_cut_to_a_thousand_lines(server: Server) -> None:
    sockets = []
    try:
        for _ in range(MAX_REPLY_ITEMS + 20):  # plain connections are clients too
            sockets.append(socket.create_connection((LOOPBACK, server.port)))
        reply = await redis_call(server.env().redis[0], (), "CLIENT LIST", 10.0)
    finally:
        for sock in sockets:
            sock.close()
    lines = reply["data"]["reply"].splitlines()
    assert len(lines) == MAX_REPLY_ITEMS + 1 and lines[-1].endswith(" more)")
    assert int(lines[-1].strip("()").split()[0]) >= 21  # 1020 + this client, minus the kept 1000
    assert "reply cut:" in reply["summary"]


async def test_filled_templates_are_bounded_again_when_they_run(server: Server, tmp_path: Path) -> None:
    # `0` stands in for the field at load time; the filled command is classified again.
    rb, context, journal = _one_step("LRANGE q 0 {{ steps.size.value }}", tmp_path)
    context.outcomes["size"] = StepOutcome("size", Outcome.PASS, "", value=5000)
    refused = await run_step(rb.steps[0], server.env(), context=context)
    assert refused.status == Outcome.REFUSED and "over 1000" in refused.summary
    with pytest.raises(PermissionError, match="COUNT given twice"):
        await redis_call(server.env().redis[0], (), "SCAN 0 COUNT 10 COUNT 100000", 5.0)


# --- the sandbox: bounded reads run under its read-only ACL user -------------------------------


@pytest.mark.parametrize(
    ("command", "passes"),
    [
        ("SCAN 0 MATCH rq:* COUNT 100", "len(data.reply) == 2"),
        ("HSCAN rq:job:nowhere 0 COUNT 10", "len(data.reply[1]) == 0"),
        ("ZSCAN nowhere 0 COUNT 10", "data.reply[1] == []"),
        ("SSCAN nowhere 0 COUNT 10", "data.reply[1] == []"),
        ("XRANGE events - + COUNT 5", "len(data.reply) <= 5"),
        ("XINFO STREAM events FULL COUNT 5", "len(data.entries) <= 5"),
        ("SLOWLOG GET", "len(data.reply) <= 10"),
        ("CLIENT LIST", "'warroom' in data.reply or 'cmd=client' in data.reply"),
        ("ZRANGE nowhere -inf +inf BYSCORE LIMIT 0 10", "data.reply == []"),
        ("CONFIG GET *", "data.requirepass in ('', '****') and data.masterauth in ('', '****')"),
    ],
)
async def test_bounded_reads_run_on_the_sandbox(sandbox: SandboxHandle, command: str, passes: str, tmp_path: Path) -> None:
    env = sandbox.env
    rb, context, journal = _one_step(command, tmp_path, target=env.redis[0].name, **{"pass": passes})
    outcome = await run_step(rb.steps[0], env, context=context)
    assert outcome.status == Outcome.PASS, outcome.summary
    user_password = syncredis.connection.parse_url(env.redis[0].url).get("password")
    _nowhere(tmp_path, outcome, journal, context, *([user_password] if user_password else []))
