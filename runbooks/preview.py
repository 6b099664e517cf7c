"""What a session action will touch, counted before it runs: the sessions a terminate or cancel reaches.

An action such as `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE <predicate>`
is previewed by running the same predicate as a plain read (`SELECT pid, usename, ... FROM
pg_stat_activity WHERE <predicate>`) on the read connection, only when the classifier calls
that read harmless; the confirmation then says how many sessions and lists the first few.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probes import units
from runbooks.classify import classify_sql, tokenize
from runbooks.sql_lexer import Token

# function -> (what the confirmation says it does, what the result line says it did)
SIGNALS = {"pg_terminate_backend": ("terminate", "terminated"), "pg_cancel_backend": ("cancel the running query of", "cancelled")}
SHOWN = 5  # session lines the confirmation lists (80x24 leaves room for about that many)
INLINE = 3  # sessions named in the one-line description (journal, notifications)
PREVIEW_SQL = """SELECT pid, usename, application_name, host(client_addr) AS client_addr, state,
       round(extract(epoch FROM now() - state_change)) AS state_s
FROM pg_stat_activity
WHERE {predicate}"""
_LITERAL = "pid IN ("  # the predicate of `SELECT pg_terminate_backend(4711)`
_TOP_LEVEL_STOPS = {"with", "union", "intersect", "except", "join", "group", "having", "window", "into"}


@dataclass(frozen=True, slots=True)
class ActionPreview:
    """The sessions an action will signal: `headline` ("terminate 36 sessions on primary
    (127.0.0.1:5432)"), one line per session, the count (None when it could not be counted,
    `note` says why)."""

    headline: str
    sessions: tuple[str, ...] = ()
    count: int | None = None
    note: str = ""

    @property
    def what(self) -> str:
        """One line: the headline and the first few sessions ("... and 33 more")."""
        if not self.sessions:
            return f"{self.headline} ({self.note})" if self.note else self.headline
        first = ", ".join(self.sessions[:INLINE])
        more = (self.count or len(self.sessions)) - min(INLINE, len(self.sessions))
        return f"{self.headline}: {first}{f' and {more} more' if more > 0 else ''}"

    def lines(self, limit: int = SHOWN) -> list[str]:
        """The first `limit` sessions, one a line, then "... and N more"."""
        shown = list(self.sessions[:limit])
        more = (self.count or len(self.sessions)) - len(shown)
        return shown + ([f"... and {more} more"] if more > 0 else [])


def signal(tokens: list[Token]) -> tuple[str, str] | None:
    """(verb, past tense) of the first terminate / cancel call, or None."""
    for t in tokens:
        if t.kind == "word" and t.text in SIGNALS:
            return SIGNALS[t.text]
    return None


def listed_pids(tokens: list[Token]) -> list[int]:
    """The numbers of every `ARRAY[n, ...]` literal: the pids a `| pids` template filled in."""
    found: list[int] = []
    for i, t in enumerate(tokens[:-1]):
        if t.kind == "word" and t.text == "array" and tokens[i + 1].text == "[":
            for inner in tokens[i + 2:]:
                if inner.text == "]":
                    break
                if inner.kind == "number" and inner.text.isdigit():
                    found.append(int(inner.text))
    return found


def _top_level(tokens: list[Token]) -> list[int]:
    depth, top = 0, []
    for i, t in enumerate(tokens):
        if t.kind == "punct" and t.text in "([":
            depth += 1
        elif t.kind == "punct" and t.text in ")]":
            depth -= 1
        elif depth == 0:
            top.append(i)
    return top


def session_predicate(sql: str) -> str | None:
    """Which sessions `sql` signals, as a WHERE predicate over pg_stat_activity, or None when
    its shape is not one this module understands (then nothing is counted beforehand).

    `SELECT pg_terminate_backend(4711)` gives `pid IN (4711)`; `SELECT ..., pg_terminate_backend(pid)
    ... FROM pg_stat_activity WHERE <predicate>` gives `<predicate>` as written."""
    try:
        tokens = tokenize(sql)
    except ValueError:
        return None
    while tokens and tokens[-1].text == ";":
        tokens = tokens[:-1]
    if not tokens or tokens[0].text != "select" or any(t.text == ";" for t in tokens):
        return None
    calls = [i for i, t in enumerate(tokens[:-3]) if t.kind == "word" and t.text in SIGNALS and tokens[i + 1].text == "("]
    if not calls or any(tokens[i + 3].text != ")" for i in calls):
        return None
    args = [tokens[i + 2] for i in calls]
    top = [tokens[i] for i in _top_level(tokens)]
    words = [t.text for t in top if t.kind == "word"]
    if any(w in _TOP_LEVEL_STOPS for w in words):
        return None
    if "from" not in words:
        if all(a.kind == "number" and a.text.isdigit() for a in args):
            return f"{_LITERAL}{', '.join(a.text for a in args)})"
        return None
    if any(not (a.kind == "word" and a.text == "pid") for a in args) or words.count("from") != 1:
        return None
    at = next(i for i, t in enumerate(top) if t.kind == "word" and t.text == "from")
    rest = [t.text for t in top[at + 1:at + 5]]
    if rest[:2] == ["pg_stat_activity", "where"]:
        where = top[at + 2]
    elif rest[:4] == ["pg_catalog", ".", "pg_stat_activity", "where"]:
        where = top[at + 4]
    else:
        return None  # an alias, a join, a subquery: not counted beforehand
    predicate = sql[where.pos + len("where"):].strip().rstrip(";").strip()
    return predicate or None


def over_activity(sql: str) -> bool:
    """Whether `sql` signals each session a `FROM pg_stat_activity WHERE ...` selects (one
    result row per session reached), rather than literal pids."""
    predicate = session_predicate(sql)
    return predicate is not None and not predicate.startswith(_LITERAL)


def preview_sql(predicate: str) -> str | None:
    """The read that lists the sessions `predicate` selects; None unless it classifies as a read."""
    sql = PREVIEW_SQL.format(predicate=predicate)
    return sql if classify_sql(sql).read_only else None


def session_line(row: dict[str, Any]) -> str:
    """One session for the confirmation: `4711 sandbox-exhaust (shop) idle 2m08s from 127.0.0.1`."""
    app = row.get("application_name") or "-"
    age = row.get("state_s")
    seconds = None if age is None else float(age)
    state = row.get("state") or "?"
    where = row.get("client_addr") or "local socket"
    return f"{row.get('pid')} {app} ({row.get('usename') or '?'}) {state} {units.duration(seconds)} from {where}"


def counted(verb: str, where: str, rows: list[dict[str, Any]], *, capped: bool) -> ActionPreview:
    """The preview of `rows` (what the predicate selects now), longest in its state first."""
    rows = sorted(rows, key=lambda r: -float(r.get("state_s") or 0))
    n = len(rows)
    many = f"at least {n}" if capped else str(n)
    return ActionPreview(f"{verb} {many} session{'s' if n != 1 else ''} on {where}",
                         tuple(session_line(r) for r in rows), n)
