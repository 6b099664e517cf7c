"""What a SQL / Redis / Docker command does: read (a step may run it) or action (needs consent).

SQL is judged in runbooks/sql_classify.py (PostgreSQL's lexical rules and an allow-list); this
module keeps the Redis and Docker rules and is the one place callers import verdicts from.
"""

from __future__ import annotations

import shlex

from runbooks.sql_classify import classify_sql
from runbooks.sql_lexer import SqlSyntaxError, Token, Undecodable, statements, tokenize
from runbooks.verdict import Classification, Verdict

__all__ = [
    "Classification", "SqlSyntaxError", "Token", "Undecodable", "Verdict", "classify_docker",
    "classify_redis", "classify_sql", "split_command", "statements", "tokenize",
]


# --- Redis ---------------------------------------------------------------------------------
# A read is bounded however it is written. Each bounded read is parsed the way the server
# parses it: Redis obeys the LAST of a repeated option (so a second COUNT is refused), a count
# of 0 or -1 often means "all", and a negative index counts from the end. SCAN's COUNT is only
# a hint, so runbooks.commands caps every reply again (the second lock).

REDIS_READS = {
    "PING", "ECHO", "INFO", "DBSIZE", "TIME", "ROLE", "LASTSAVE", "LLEN", "LINDEX", "LRANGE",
    "XLEN", "XINFO", "XPENDING", "XRANGE", "XREVRANGE", "ZCARD", "ZCOUNT", "ZRANGE", "ZSCORE",
    "ZRANK", "SCARD", "SISMEMBER", "HLEN", "HGET", "HGETALL", "HEXISTS", "GET", "STRLEN",
    "EXISTS", "TYPE", "TTL", "PTTL", "OBJECT", "MEMORY", "SCAN", "SSCAN", "HSCAN", "ZSCAN",
    "SLOWLOG", "CLIENT", "CONFIG", "LATENCY",
}
# Sub-commands that read; any other sub-command of these is an action (CONFIG SET / RESETSTAT /
# REWRITE, CLIENT KILL / PAUSE, SLOWLOG RESET, LATENCY RESET, MEMORY PURGE, ...).
REDIS_READ_SUBCOMMANDS = {
    "MEMORY": {"USAGE", "STATS", "DOCTOR"},
    "SLOWLOG": {"GET", "LEN"},
    "CLIENT": {"LIST", "INFO", "GETNAME", "ID"},
    "CONFIG": {"GET"},
    "LATENCY": {"LATEST", "HISTORY", "DOCTOR"},
    "OBJECT": {"ENCODING", "IDLETIME", "FREQ", "REFCOUNT", "HELP"},
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
MAX_SCAN_COUNT = 1000  # COUNT of SCAN / SSCAN / HSCAN / ZSCAN
MAX_RANGE = 1000  # items a range read may return (LRANGE, ZRANGE, XRANGE, SLOWLOG GET, ...)
# A read whose reply size only the data knows: runbooks.commands asks for the size first.
REDIS_SIZED = {"HGETALL": ("HLEN", "HSCAN key 0 COUNT 100")}

# redis-cli's own options are not Redis commands (as a "command" they would load as actions).
_CLI_HINTS = {
    "--bigkeys": "use a manual step with a ```sh block, or SCAN 0 COUNT 100 and MEMORY USAGE key",
    "--memkeys": "use a manual step with a ```sh block, or SCAN 0 COUNT 100 and MEMORY USAGE key",
    "--hotkeys": "use a manual step with a ```sh block, or OBJECT FREQ key",
    "--latency": "use LATENCY LATEST (or the ping probe)",
    "--latency-history": "use LATENCY HISTORY event (or the ping probe)",
    "--latency-dist": "use LATENCY LATEST (or the ping probe)",
    "--stat": "use INFO stats (or INFO memory, INFO clients)",
    "--scan": "use SCAN 0 MATCH pattern COUNT 100",
}
_CLI_CONNECTION = {"-h", "-p", "-a", "-s", "-u", "-n", "--user", "--pass", "--askpass", "--tls", "--sni", "--cacert"}
_CONNECTION_HINT = "target= names the server and the config holds its credentials; write only the Redis command, e.g. INFO memory"


def split_command(text: str) -> list[str]:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if len(lines) != 1:
        raise ValueError("expected exactly one command in the block")
    try:
        return shlex.split(lines[0])
    except ValueError as exc:
        raise ValueError(f"cannot split the command: {exc}") from None


def _redis_cli_hint(words: list[str]) -> str:
    """Why a block written for redis-cli is not a Redis command (names flags, never values)."""
    shell = words[0].lower() == "redis-cli"
    flag = next((w for w in (words[1:] if shell else words[:1]) if w.startswith("-")), "")
    flag = flag.split("=", 1)[0][:40]  # --pass=SECRET: name the option, never its value
    if flag in _CLI_HINTS:
        return f"{flag} is a redis-cli option, not a Redis command: {_CLI_HINTS[flag]}"
    if flag in _CLI_CONNECTION:
        return f"{flag} is a redis-cli option, not a Redis command: {_CONNECTION_HINT}"
    if flag and not shell:
        return f"{flag} is a redis-cli option, not a Redis command: use a manual step with a ```sh block"
    if shell:
        return f"redis-cli is the shell client, not a Redis command: {_CONNECTION_HINT}"
    return ""


def _integer(word: str) -> int | None:
    """A whole number as Redis reads one (ASCII digits, optional minus), else None."""
    digits = word[1:] if word.startswith("-") else word
    return int(word) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None


def _options(words: list[str], spec: dict[str, int]) -> tuple[dict[str, list[str]], str]:
    """Trailing `NAME value...` options as the server reads them: ({name: values}, "") or
    ({}, why refused). Unknown options and repeated ones (Redis obeys the last) are refused."""
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        name = words[i].upper()
        if name not in spec:
            return {}, f"unexpected {words[i]!r} (options here: {', '.join(spec)})"
        if name in found:
            return {}, f"{name} given twice (Redis obeys the last one): write it once"
        values = words[i + 1 : i + 1 + spec[name]]
        if len(values) < spec[name]:
            return {}, f"{name} needs a value"
        found[name] = values
        i += 1 + spec[name]
    return found, ""


def _counted(options: dict[str, list[str]], name: str, low: int, high: int, example: str) -> str:
    if name not in options:
        return f"needs {name} n with n from {low} to {high}, e.g. {example}"
    n = _integer(options[name][0])
    if n is None or not low <= n <= high:
        return f"{name} must be a whole number from {low} to {high}, got {options[name][0][:20]!r}"
    return ""


def _index_range(start_word: str, stop_word: str) -> str:
    start, stop = _integer(start_word), _integer(stop_word)
    if start is None or stop is None:
        return "start and stop must be whole numbers"
    if (start < 0) != (stop < 0):
        return f"{start} {stop} can span the whole key (a negative index counts from the end): use e.g. 0 99 or -100 -1"
    if stop - start >= MAX_RANGE:
        return f"{start} {stop} is over {MAX_RANGE} items"
    return ""


def _scan(cmd: str, args: list[str]) -> str:
    """SCAN cursor [MATCH p] [COUNT n] [TYPE t]; SSCAN / HSCAN / ZSCAN key cursor [...]."""
    fixed = 1 if cmd == "SCAN" else 2
    example = "SCAN 0 MATCH queue:* COUNT 100" if cmd == "SCAN" else f"{cmd} key 0 COUNT 100"
    if len(args) < fixed or not (args[fixed - 1].isascii() and args[fixed - 1].isdigit()):
        return f"needs {'a' if fixed == 1 else 'a key and a'} cursor (0 to start), e.g. {example}"
    spec = {"MATCH": 1, "COUNT": 1} | ({"TYPE": 1} if cmd == "SCAN" else {}) | ({"NOVALUES": 0} if cmd == "HSCAN" else {})
    options, why = _options(args[fixed:], spec)
    return why or _counted(options, "COUNT", 1, MAX_SCAN_COUNT, example)


def _lrange(cmd: str, args: list[str]) -> str:
    return "needs key start stop, e.g. LRANGE queue 0 99" if len(args) != 3 else _index_range(args[1], args[2])


def _zrange(cmd: str, args: list[str]) -> str:
    """ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]."""
    if len(args) < 3:
        return "needs key start stop, e.g. ZRANGE key 0 99"
    options, why = _options(args[3:], {"BYSCORE": 0, "BYLEX": 0, "REV": 0, "LIMIT": 2, "WITHSCORES": 0})
    if why:
        return why
    by = [o for o in ("BYSCORE", "BYLEX") if o in options]
    if len(by) > 1:
        return "BYSCORE and BYLEX exclude each other"
    if not by:
        return "LIMIT needs BYSCORE or BYLEX" if "LIMIT" in options else _index_range(args[1], args[2])
    if "LIMIT" not in options:
        return f"{by[0]} needs LIMIT offset count with count from 0 to {MAX_RANGE}, e.g. LIMIT 0 100"
    offset, count = (_integer(w) for w in options["LIMIT"])
    if offset is None or offset < 0 or count is None or not 0 <= count <= MAX_RANGE:
        return f"LIMIT needs an offset >= 0 and a count from 0 to {MAX_RANGE} (a negative count means all)"
    return ""


def _xrange(cmd: str, args: list[str]) -> str:
    example = f"{cmd} stream {'- +' if cmd == 'XRANGE' else '+ -'} COUNT 100"
    if len(args) < 3:
        return f"needs key, two ids and COUNT, e.g. {example}"
    options, why = _options(args[3:], {"COUNT": 1})
    return why or _counted(options, "COUNT", 1, MAX_RANGE, example)


def _xinfo_stream(cmd: str, args: list[str]) -> str:
    """XINFO STREAM key [FULL [COUNT n]]: FULL without COUNT is 10 entries, COUNT 0 is all."""
    if not args:
        return "needs a key"
    if len(args) == 1:
        return ""
    if args[1].upper() != "FULL":
        return f"unexpected {args[1]!r} (XINFO STREAM key [FULL COUNT n])"
    options, why = _options(args[2:], {"COUNT": 1})
    return why or _counted(options, "COUNT", 1, MAX_RANGE, "XINFO STREAM key FULL COUNT 100")


def _slowlog_get(cmd: str, args: list[str]) -> str:
    """SLOWLOG GET [n]: no n is 10 entries, -1 is the whole log."""
    if len(args) > 1:
        return "SLOWLOG GET [n] takes one number"
    n = _integer(args[0]) if args else 10
    return "" if n is not None and 0 <= n <= MAX_RANGE else f"n must be from 0 to {MAX_RANGE} (-1 means the whole log)"


def _xpending(cmd: str, args: list[str]) -> str:
    """XPENDING key group [[IDLE ms] start end count [consumer]]."""
    rest = args[2:]
    if rest and rest[0].upper() == "IDLE":
        if len(rest) < 2 or _integer(rest[1]) is None:
            return "IDLE needs a number of milliseconds"
        rest = rest[2:]
    if len(args) < 2 or (rest and len(rest) not in (3, 4)) or (not rest and len(args) > 2):
        return "XPENDING key group [[IDLE ms] start end count [consumer]]"
    count = _integer(rest[2]) if rest else 0
    return "" if count is not None and 0 <= count <= MAX_RANGE else f"count must be from 0 to {MAX_RANGE}"


def _memory_usage(cmd: str, args: list[str]) -> str:
    """MEMORY USAGE key [SAMPLES n]: SAMPLES 0 walks every element of the key."""
    if not args:
        return "needs a key"
    options, why = _options(args[1:], {"SAMPLES": 1})
    return why or ("" if "SAMPLES" not in options else _counted(options, "SAMPLES", 1, MAX_RANGE, "SAMPLES 5"))


_BOUNDS = {
    "SCAN": _scan, "SSCAN": _scan, "HSCAN": _scan, "ZSCAN": _scan, "LRANGE": _lrange,
    "ZRANGE": _zrange, "XRANGE": _xrange, "XREVRANGE": _xrange, "XPENDING": _xpending,
    "XINFO STREAM": _xinfo_stream, "SLOWLOG GET": _slowlog_get, "MEMORY USAGE": _memory_usage,
}


def classify_redis(words: list[str]) -> Classification:
    if not words:
        return Classification("refused", "empty command")
    if hint := _redis_cli_hint(words):
        return Classification("refused", hint)
    cmd = words[0].upper()
    sub = words[1].upper() if len(words) > 1 else ""
    if cmd in REDIS_REFUSED:
        return Classification("refused", REDIS_REFUSED[cmd])
    if cmd not in REDIS_READS:
        return Classification("action", f"{cmd} changes data or server state", (cmd,))
    name, args = cmd, words[1:]
    if cmd in REDIS_READ_SUBCOMMANDS:
        if not sub:
            return Classification("refused", f"{cmd} needs a subcommand ({', '.join(sorted(REDIS_READ_SUBCOMMANDS[cmd]))})")
        if sub not in REDIS_READ_SUBCOMMANDS[cmd]:
            return Classification("action", f"{cmd} {sub} is not a read", (f"{cmd} {sub}",))
        name, args = f"{cmd} {sub}", words[2:]
    check = _BOUNDS.get(name)
    if check and (why := check(cmd, args)):
        return Classification("refused", f"{name}: {why}")
    return Classification("read", f"{name} is a read")


# --- Docker --------------------------------------------------------------------------------

DOCKER_READS = {"ps", "inspect", "logs"}
DOCKER_ACTIONS = {"restart", "stop", "start", "kill", "pause", "unpause", "rm"}
MAX_LOG_LINES = 1000
DEFAULT_LOG_LINES = 100
_SINCE_UNITS = {"s": 1, "m": 60, "h": 3600}


def docker_log_options(rest: list[str]) -> tuple[int, int | None]:
    """(lines, since seconds or None) of `logs NAME [--tail N] [--since 10m]`; ValueError saying
    what is accepted. A window without --tail keeps its last MAX_LOG_LINES lines."""
    options: dict[str, str] = {}
    usage = f"docker logs NAME [--tail N] [--since 30s|10m|2h] with N <= {MAX_LOG_LINES}"
    for i in range(0, len(rest), 2):
        flag = rest[i]
        if flag not in ("--tail", "--since") or flag in options or i + 1 >= len(rest):
            raise ValueError(usage)
        options[flag] = rest[i + 1]
    tail, since = options.get("--tail"), options.get("--since")
    if tail is not None and not (tail.isascii() and tail.isdigit() and int(tail) <= MAX_LOG_LINES):
        raise ValueError(usage)
    seconds = None
    if since is not None:
        number, unit = since[:-1], since[-1:]
        if unit not in _SINCE_UNITS or not (number.isascii() and number.isdigit()) or not 0 < int(number) < 10**6:
            raise ValueError(f"docker logs --since takes a duration in s, m or h (30s, 10m, 2h), got {since[:20]!r}")
        seconds = int(number) * _SINCE_UNITS[unit]
    lines = int(tail) if tail is not None else MAX_LOG_LINES if since is not None else DEFAULT_LOG_LINES
    return lines, seconds


def classify_docker(words: list[str]) -> Classification:
    if words and words[0].lower() == "docker":  # `DOCKER RESTART web` is `docker restart web`
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
        try:
            docker_log_options(words[2:])
        except ValueError as exc:
            return Classification("refused", str(exc))
        return Classification("read", "docker logs is a read")
    if cmd in DOCKER_ACTIONS:
        if len(words) != 2:
            return Classification("refused", f"docker {cmd} takes exactly one container name")
        return Classification("action", f"docker {cmd} changes a container", (cmd,))
    return Classification("refused", f"docker {cmd} is not supported (reads: ps, inspect, logs; actions: {', '.join(sorted(DOCKER_ACTIONS))})")
