"""What a SQL / Redis / Docker command does: read (a step may run it) or action (needs consent)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["read", "action", "refused"]


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    reason: str  # why, for `runbook show` and the confirmation dialog
    calls: tuple[str, ...] = ()  # side-effecting functions / commands found

    @property
    def read_only(self) -> bool:
        return self.verdict == "read"


class SqlSyntaxError(ValueError):
    """SQL the tokenizer cannot read (unterminated string, comment or quoted identifier)."""


# --- SQL tokenizer ------------------------------------------------------------------------
# Comments, string literals, dollar quotes and quoted identifiers are consumed whole, so a
# function name inside a literal or a statement hidden in a comment can never be mistaken
# for (or hide) real SQL.


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word / qident / string / number / param / op / punct
    text: str  # words lower-cased; qident unquoted
    pos: int


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2  # PostgreSQL block comments nest
    while depth:
        if i >= len(sql):
            raise SqlSyntaxError("unterminated /* comment")
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    i += 1
    while True:
        if i >= len(sql):
            raise SqlSyntaxError(f"unterminated {quote} quote")
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if sql.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1


def tokenize(sql: str) -> list[Token]:  # noqa: C901 - a lexer is one loop of cases
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            end = _skip_quoted(sql, i, "'", backslash=False)
            tokens.append(Token("string", sql[i + 1 : end - 1], i))
            i = end
        elif ch in "eEbBxXnN" and sql.startswith("'", i + 1):
            end = _skip_quoted(sql, i + 1, "'", backslash=ch in "eE")
            tokens.append(Token("string", sql[i + 2 : end - 1], i))
            i = end
        elif ch in "uU" and sql.startswith("&'", i + 1):
            end = _skip_quoted(sql, i + 2, "'", backslash=False)
            tokens.append(Token("string", sql[i + 3 : end - 1], i))
            i = end
        elif ch in "uU" and sql.startswith('&"', i + 1):
            end = _skip_quoted(sql, i + 2, '"', backslash=False)
            tokens.append(Token("qident", sql[i + 3 : end - 1].replace('""', '"'), i))
            i = end
        elif ch == '"':
            end = _skip_quoted(sql, i, '"', backslash=False)
            tokens.append(Token("qident", sql[i + 1 : end - 1].replace('""', '"'), i))
            i = end
        elif ch == "$":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_") and not sql[i + 1].isdigit():
                j += 1
            if j < n and sql[j] == "$":  # $tag$ ... $tag$ (or $$ ... $$)
                tag = sql[i : j + 1]
                end = sql.find(tag, j + 1)
                if end < 0:
                    raise SqlSyntaxError(f"unterminated {tag} quote")
                tokens.append(Token("string", sql[j + 1 : end], i))
                i = end + len(tag)
            else:
                j = i + 1
                while j < n and sql[j].isdigit():
                    j += 1
                tokens.append(Token("param", sql[i:j], i))
                i = max(j, i + 1)
        elif ch.isalpha() or ch == "_" or ord(ch) > 127:
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$" or ord(sql[j]) > 127):
                j += 1
            tokens.append(Token("word", sql[i:j].lower(), i))
            i = j
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            tokens.append(Token("number", sql[i:j], i))
            i = j
        elif ch in "(),;[].":
            tokens.append(Token("punct", ch, i))
            i += 1
        else:
            j = i
            while j < n and sql[j] in "+-*/<>=~!@#%^&|`?:":
                if sql.startswith("--", j) or sql.startswith("/*", j):
                    break
                j += 1
            tokens.append(Token("op", sql[i:max(j, i + 1)], i))
            i = max(j, i + 1)
    return tokens


def statements(tokens: list[Token]) -> list[list[Token]]:
    """Split on top-level semicolons (literals are already single tokens); drop empty ones."""
    out: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind == "punct" and tok.text == ";":
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


# --- SQL classification -------------------------------------------------------------------

READ_STARTS = {"select", "with", "show", "explain", "values", "table"}
# Words that, anywhere in a statement, mean it writes: DML inside a CTE, SELECT ... INTO.
WRITE_WORDS = {"insert", "update", "delete", "merge", "into", "truncate"}
SIDE_EFFECT_FUNCTIONS = {
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    "set_config", "nextval", "setval", "setseed", "txid_current", "pg_current_xact_id",
    "pg_notify", "pg_logical_emit_message", "pg_switch_wal", "pg_switch_xlog",
    "pg_create_restore_point", "pg_promote", "pg_replication_slot_advance",
    "pg_import_system_collations", "pg_log_backend_memory_contexts", "pg_log_standby_snapshot",
    "pg_sync_replication_slots", "pg_start_backup", "pg_stop_backup", "pg_prewarm",
    "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "pg_export_snapshot",
}
SIDE_EFFECT_PREFIXES = (
    "pg_advisory", "pg_try_advisory", "pg_stat_reset", "pg_stat_statements_reset", "pg_sleep",
    "lo_", "dblink", "pg_read_", "pg_file_", "pg_wal_replay_", "pg_xlog_replay_",
    "pg_create_", "pg_drop_", "pg_copy_", "pg_logical_slot_get_", "pg_replication_origin_",
    "pg_backup_", "pg_restore_", "pg_clear_", "pg_set_", "cursor_to_xml",
)


def side_effecting(name: str) -> bool:
    name = name.lower()
    return name in SIDE_EFFECT_FUNCTIONS or name.startswith(SIDE_EFFECT_PREFIXES)


def _function_calls(stmt: list[Token]) -> list[str]:
    """Names called as functions: an identifier directly followed by "(" (schema ignored)."""
    calls = []
    for tok, nxt in zip(stmt, stmt[1:], strict=False):
        if tok.kind in ("word", "qident") and nxt.kind == "punct" and nxt.text == "(":
            calls.append(tok.text.lower())
    return calls


def _explain_target(stmt: list[Token]) -> tuple[list[Token], str | None]:
    """The statement EXPLAIN shows, or a reason when EXPLAIN would execute it (ANALYZE)."""
    rest = stmt[1:]
    if rest and rest[0].kind == "punct" and rest[0].text == "(":
        depth, j = 0, 0
        for j, tok in enumerate(rest):
            if tok.kind == "word" and tok.text in ("analyze", "analyse"):
                following = rest[j + 1] if j + 1 < len(rest) else None
                off = following is not None and following.text in ("false", "off", "0")
                if not off:
                    return [], "EXPLAIN ANALYZE executes the statement"
            if tok.kind == "punct" and tok.text == "(":
                depth += 1
            elif tok.kind == "punct" and tok.text == ")":
                depth -= 1
                if depth == 0:
                    break
        return rest[j + 1 :], None
    while rest and rest[0].kind == "word" and rest[0].text in ("analyze", "analyse", "verbose"):
        if rest[0].text in ("analyze", "analyse"):
            return [], "EXPLAIN ANALYZE executes the statement"
        rest = rest[1:]
    return rest, None


def _classify_statement(stmt: list[Token]) -> Classification:
    first = stmt[0]
    while first.kind == "punct" and first.text == "(" and len(stmt) > 1:
        stmt = stmt[1:]  # (SELECT ...) UNION (SELECT ...)
        first = stmt[0]
    if first.kind != "word" or first.text not in READ_STARTS:
        return Classification("action", f"{first.text.upper()} is not a read-only statement")
    if first.text == "explain":
        inner, why = _explain_target(stmt)
        if why:
            return Classification("action", why)
        return _classify_statement(inner) if inner else Classification("read", "EXPLAIN")
    calls = tuple(c for c in _function_calls(stmt) if side_effecting(c))
    if calls:
        return Classification("action", f"calls {', '.join(calls)}", calls)
    for i, tok in enumerate(stmt):
        if tok.kind != "word":
            continue
        if tok.text in WRITE_WORDS:
            what = "SELECT ... INTO creates a table" if tok.text == "into" else f"contains {tok.text.upper()}"
            if tok.text == "update" and i and stmt[i - 1].text in ("for", "key"):
                what = "FOR UPDATE takes row locks"
            return Classification("action", what)
        if tok.text == "for" and i + 1 < len(stmt) and stmt[i + 1].text in ("share", "no", "key"):
            return Classification("action", "FOR SHARE / FOR NO KEY UPDATE takes row locks")
    return Classification("read", "read-only")


def classify_sql(sql: str) -> Classification:
    """Read only when every statement is a plain read; SqlSyntaxError when it cannot be read."""
    stmts = statements(tokenize(sql))
    if not stmts:
        raise SqlSyntaxError("no SQL statement")
    verdicts = [_classify_statement(s) for s in stmts]
    bad = [v for v in verdicts if not v.read_only]
    if not bad:
        return Classification("read", "read-only" if len(stmts) == 1 else f"{len(stmts)} read-only statements")
    calls = tuple(c for v in bad for c in v.calls)
    return Classification("action", "; ".join(dict.fromkeys(v.reason for v in bad)), calls)


# --- Redis ---------------------------------------------------------------------------------

REDIS_READS = {
    "PING", "ECHO", "INFO", "DBSIZE", "TIME", "ROLE", "LASTSAVE", "LLEN", "LINDEX", "LRANGE",
    "XLEN", "XINFO", "XPENDING", "XRANGE", "XREVRANGE", "ZCARD", "ZCOUNT", "ZRANGE", "ZSCORE",
    "ZRANK", "SCARD", "SISMEMBER", "HLEN", "HGET", "HGETALL", "HEXISTS", "GET", "STRLEN",
    "EXISTS", "TYPE", "TTL", "PTTL", "OBJECT", "MEMORY", "SCAN", "SLOWLOG", "CLIENT", "CONFIG",
    "LATENCY",
}
# Sub-commands that read; any other sub-command of these is an action.
REDIS_READ_SUBCOMMANDS = {
    "MEMORY": {"USAGE", "STATS", "DOCTOR"},
    "SLOWLOG": {"GET", "LEN"},
    "CLIENT": {"LIST", "INFO", "GETNAME", "ID"},
    "CONFIG": {"GET"},
    "LATENCY": {"LATEST", "HISTORY", "DOCTOR"},
    "OBJECT": {"ENCODING", "IDLETIME", "FREQ", "REFCOUNT"},
    "XINFO": {"STREAM", "GROUPS", "CONSUMERS"},
}
REDIS_REFUSED = {
    "KEYS": "KEYS blocks Redis on a large database; use SCAN 0 MATCH pattern COUNT 100",
    "MONITOR": "MONITOR streams forever", "SUBSCRIBE": "SUBSCRIBE never returns",
    "PSUBSCRIBE": "PSUBSCRIBE never returns", "SSUBSCRIBE": "SSUBSCRIBE never returns",
    "SYNC": "SYNC is for replicas", "PSYNC": "PSYNC is for replicas",
    "DEBUG": "DEBUG can crash or stall the server", "SHUTDOWN": "SHUTDOWN stops Redis",
    "BLPOP": "blocking pop", "BRPOP": "blocking pop", "BLMOVE": "blocking pop",
    "BRPOPLPUSH": "blocking pop", "BZPOPMIN": "blocking pop", "BZPOPMAX": "blocking pop",
    "BLMPOP": "blocking pop", "BZMPOP": "blocking pop", "XREAD": "XREAD may block",
    "XREADGROUP": "XREADGROUP consumes messages", "WAIT": "WAIT blocks", "MIGRATE": "MIGRATE moves keys",
}
MAX_SCAN_COUNT = 1000
MAX_RANGE = 1000


def split_command(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if len(lines) != 1:
        raise ValueError("expected exactly one command in the block")
    try:
        return shlex.split(lines[0])
    except ValueError as exc:
        raise ValueError(f"cannot split the command: {exc}") from None


def _bounded(args: list[str], lo: int, hi: int) -> bool:
    try:
        start, stop = int(args[lo]), int(args[hi])
    except (IndexError, ValueError):
        return False
    return stop >= 0 and start >= 0 and stop - start < MAX_RANGE


def classify_redis(words: list[str]) -> Classification:
    if not words:
        return Classification("refused", "empty command")
    cmd = words[0].upper()
    sub = words[1].upper() if len(words) > 1 else ""
    if cmd in REDIS_REFUSED:
        return Classification("refused", REDIS_REFUSED[cmd])
    if cmd not in REDIS_READS:
        return Classification("action", f"{cmd} changes data or server state", (cmd,))
    if cmd in REDIS_READ_SUBCOMMANDS and sub not in REDIS_READ_SUBCOMMANDS[cmd]:
        return Classification("action", f"{cmd} {sub} is not a read", (f"{cmd} {sub}",))
    if cmd == "SCAN":
        upper = [w.upper() for w in words]
        if "COUNT" not in upper or not upper[upper.index("COUNT") + 1 :][:1] or not upper[upper.index("COUNT") + 1].isdigit() or int(upper[upper.index("COUNT") + 1]) > MAX_SCAN_COUNT:
            return Classification("refused", f"SCAN needs COUNT n with n <= {MAX_SCAN_COUNT}")
    if cmd in ("LRANGE", "ZRANGE") and not _bounded(words, 2, 3):
        return Classification("refused", f"{cmd} needs a range of under {MAX_RANGE} from a non-negative start")
    if cmd in ("XRANGE", "XREVRANGE"):
        upper = [w.upper() for w in words]
        if "COUNT" not in upper:
            return Classification("refused", f"{cmd} needs COUNT n")
    return Classification("read", f"{cmd} is a read")


# --- Docker --------------------------------------------------------------------------------

DOCKER_READS = {"ps", "inspect", "logs"}
DOCKER_ACTIONS = {"restart", "stop", "start", "kill", "pause", "unpause", "rm"}
MAX_LOG_LINES = 1000


def classify_docker(words: list[str]) -> Classification:
    if words and words[0] == "docker":
        words = words[1:]
    if not words:
        return Classification("refused", "empty command")
    cmd = words[0].lower()
    if cmd == "ps":
        return Classification("read", "docker ps is a read") if len(words) == 1 else Classification("refused", "docker ps takes no arguments here")
    if cmd in DOCKER_READS | DOCKER_ACTIONS and len(words) < 2:
        return Classification("refused", f"docker {cmd} needs a container name")
    if cmd == "inspect":
        return Classification("read", "docker inspect is a read") if len(words) == 2 else Classification("refused", "docker inspect takes one container")
    if cmd == "logs":
        rest = words[2:]
        if rest and (len(rest) != 2 or rest[0] != "--tail" or not rest[1].isdigit() or int(rest[1]) > MAX_LOG_LINES):
            return Classification("refused", f"docker logs NAME [--tail N] with N <= {MAX_LOG_LINES}")
        return Classification("read", "docker logs is a read")
    if cmd in DOCKER_ACTIONS:
        if len(words) != 2:
            return Classification("refused", f"docker {cmd} takes exactly one container name")
        return Classification("action", f"docker {cmd} changes a container", (cmd,))
    return Classification("refused", f"docker {cmd} is not supported (reads: ps, inspect, logs; actions: {', '.join(sorted(DOCKER_ACTIONS))})")
