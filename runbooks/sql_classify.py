"""Whether a SQL statement is a read: fail closed, by an allow-list, on PostgreSQL's own tokens.

A statement is a read only when all of it is understood and known to change nothing: it starts
as a read (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN without ANALYZE), writes nothing (no DML
in a CTE, no SELECT INTO, no row locks), calls only functions on the allow-list
(runbooks/sql_allowlist.py), casts only to built-in types, uses only built-in operators, and
reads no relation that holds secrets or server files. Anything else, including text the lexer
cannot decode with certainty, is an action: it runs only after a confirmation, with the action
credential.

What this cannot see, and the least-privilege read role covers: a view or a column default
that calls a function, a function invoked through attribute notation (`t.f` for `f(t)`),
and an operator or function a site has defined in a schema searched before pg_catalog.
"""

from __future__ import annotations

from runbooks.sql_allowlist import (
    COLUMN_KEYWORDS,
    DENIED_RELATIONS,
    FUNCTIONS,
    OPERATORS,
    RESERVED_KEYWORDS,
    SYNTAX_FUNCTIONS,
    TYPE_FUNC_KEYWORDS,
    TYPE_KEYWORDS,
    TYPE_WORDS,
    TYPES,
    UNRESERVED_KEYWORDS,
)
from runbooks.sql_lexer import SqlSyntaxError, Token, Undecodable, statements, tokenize
from runbooks.verdict import Classification

READ_STARTS = {"select", "with", "show", "explain", "values", "table"}
# Words that, anywhere in a statement, mean it is not a plain read.
WRITE_WORDS = {
    "insert", "update", "delete", "merge", "into", "truncate", "copy", "create", "drop",
    "alter", "grant", "revoke", "lock", "vacuum", "analyze", "analyse", "cluster", "reindex",
    "refresh", "notify", "listen", "unlisten", "call", "do", "set", "reset", "commit",
    "rollback", "savepoint", "prepare", "execute", "deallocate", "declare", "discard",
    "checkpoint", "import",
}
EXPLAIN_OPTIONS = {
    "analyze", "analyse", "verbose", "costs", "settings", "generic_plan", "buffers", "wal",
    "timing", "summary", "memory", "serialize", "format",
}
KEYWORDS = RESERVED_KEYWORDS | TYPE_FUNC_KEYWORDS | COLUMN_KEYWORDS | UNRESERVED_KEYWORDS
# Keywords followed by "(" as syntax, not as a call: IN (...), EXISTS (...), ARRAY(...), ...
# Reserved words cannot name a function; the column-name keywords cannot either.
SYNTAX_PARENS = (RESERVED_KEYWORDS | {"exists", "values", "row", "between"}) - set(FUNCTIONS)
# Type/function-name keywords may name a site's function (`SELECT freeze(1)` calls one): they
# are syntax only as an infix after an operand (`a LIKE (b)`, `t JOIN (...)`).
INFIX_KEYWORDS = {"join", "like", "ilike", "overlaps"}
JOIN_WORDS = {"left", "right", "inner", "outer", "full", "cross", "natural"}
CAST_OPENERS = {"cast", "treat"}


def _builtin_type(parts: list[Token]) -> bool:
    """A built-in type: `int`, `pg_catalog.int4`, `"int4"`; a quoted or qualified keyword
    type (`"integer"`) would be a site's own."""
    names = [p.text for p in parts]
    if len(names) == 2 and names[0] == "pg_catalog":
        return names[1] in TYPES and names[1] not in TYPE_KEYWORDS
    if len(names) != 1 or names[0] not in TYPES:
        return False
    return parts[0].kind == "word" or names[0] not in TYPE_KEYWORDS


class _Action(Exception):
    """Raised inside the walk: the statement is an action, for this reason."""

    def __init__(self, reason: str, calls: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason, self.calls = reason, calls


def _is(tok: Token | None, kind: str, text: str | None = None) -> bool:
    return tok is not None and tok.kind == kind and (text is None or tok.text == text)


def _name(tok: Token) -> bool:
    return tok.kind in ("word", "qident")


class _Walk:
    """One statement's tokens, checked left to right; `functions` collects every call seen."""

    def __init__(self, stmt: list[Token]) -> None:
        self.stmt = stmt
        self.functions: list[str] = []

    def at(self, i: int) -> Token | None:
        return self.stmt[i] if 0 <= i < len(self.stmt) else None

    def chain_end(self, i: int) -> int:
        """Last index of the dotted name starting at i (a, a.b, "a"."b")."""
        while _is(self.at(i + 1), "punct", ".") and (nxt := self.at(i + 2)) is not None and _name(nxt):
            i += 2
        return i

    def parts(self, i: int, end: int) -> list[Token]:
        return self.stmt[i : end + 1 : 2]

    def closing(self, i: int) -> int:
        """Index of the ")" or "]" matching the opener at i (or the last token)."""
        opener = self.stmt[i].text
        closer = ")" if opener == "(" else "]"
        depth = 0
        for j in range(i, len(self.stmt)):
            tok = self.stmt[j]
            if tok.kind == "punct" and tok.text == opener:
                depth += 1
            elif tok.kind == "punct" and tok.text == closer:
                depth -= 1
                if depth == 0:
                    return j
        raise SqlSyntaxError(f"unbalanced {opener}")

    # --- types -----------------------------------------------------------------------------

    def type_at(self, i: int) -> int:
        """Check the type name starting at i; return the index after it (modifiers included)."""
        tok = self.at(i)
        if tok is None or not _name(tok):
            raise _Action("a cast without a type name")
        end = self.chain_end(i)
        if not _builtin_type(self.parts(i, end)):
            names = ".".join(p.text for p in self.parts(i, end))
            raise _Action(f"casts to type {names}, not a built-in type on the allow-list")
        k = end + 1
        while _is(self.at(k), "word") and self.stmt[k].text in TYPE_WORDS:
            k += 1
        while _is(self.at(k), "punct", "(") or _is(self.at(k), "punct", "["):
            close = self.closing(k)
            inner = self.stmt[k + 1 : close]
            if any(t.kind not in ("number", "punct") for t in inner):
                raise _Action("a type modifier that is not a number")
            k = close + 1
        return k

    # --- calls -----------------------------------------------------------------------------

    def is_call(self, start: int, end: int) -> bool:
        """Whether the name at start..end, followed by "(", calls a function."""
        first = self.stmt[start]
        if start == end and first.kind == "word":
            if first.text == "operator":
                raise _Action("OPERATOR(...) names an operator that may run any function")
            if first.text in SYNTAX_PARENS:
                return False
            if first.text in INFIX_KEYWORDS and self.after_operand(start):
                return False
        prev = self.at(start - 1)
        # An alias with a column list: `FROM t a(x, y)`, `... ) g(i)`, `AS g(i)`. A call never
        # follows a name, a ")" or a "]" directly; OPERATOR(...) is refused above.
        if prev is not None and (
            prev.kind == "qident"
            or (prev.kind == "punct" and prev.text in (")", "]"))
            or (prev.kind == "word" and (prev.text == "as" or prev.text not in KEYWORDS))
        ):
            return False
        if start == end and self.is_cte_name(end + 1):
            return False
        return True

    def after_operand(self, i: int) -> bool:
        """Whether the token before i ends an operand (or is a JOIN's own keyword)."""
        prev = self.at(i - 1)
        if prev is None:
            return False
        if prev.kind in ("qident", "string", "number", "param"):
            return True
        if prev.kind == "punct":
            return prev.text in (")", "]")
        return prev.kind == "word" and (prev.text not in KEYWORDS or prev.text in JOIN_WORDS)

    def is_cte_name(self, paren: int) -> bool:
        """`WITH name (col, col) AS (` : a CTE's column list, not a call."""
        close = self.closing(paren)
        inner = self.stmt[paren + 1 : close]
        if not all(_name(t) or _is(t, "punct", ",") for t in inner):
            return False
        after, then = self.at(close + 1), self.at(close + 2)
        return _is(after, "word", "as") and (
            _is(then, "punct", "(") or _is(then, "word", "materialized") or _is(then, "word", "not")
        )

    def call(self, start: int, end: int) -> None:
        parts = self.parts(start, end)
        names = [p.text for p in parts]
        if len(names) == 2 and names[0] == "pg_catalog":
            names = names[1:]  # the same function as the unqualified name
        shown = ".".join(names)
        self.functions.append(shown)
        if names[-1] in SYNTAX_FUNCTIONS and (len(parts) > 1 or parts[0].kind != "word"):
            raise _Action(f"calls {shown}, a site's function named like SQL syntax", (shown,))
        if len(names) != 1:
            raise _Action(f"calls {shown}, a function outside pg_catalog (not on the allow-list)", (shown,))
        if names[0] not in FUNCTIONS:
            raise _Action(f"calls {shown}, not on the allow-list of side-effect-free functions", (shown,))

    # --- the walk ----------------------------------------------------------------------------

    def word(self, i: int) -> None:
        text = self.stmt[i].text
        nxt = self.at(i + 1)
        if text == "for" and nxt is not None and nxt.text in ("update", "share", "no", "key"):
            raise _Action("FOR UPDATE / FOR SHARE takes row locks")
        if text == "fetch" and nxt is not None and nxt.text in ("first", "next"):
            return
        if text == "into":
            raise _Action("SELECT ... INTO creates a table")
        if text in WRITE_WORDS or text == "fetch":
            raise _Action(f"contains {text.upper()}")

    def run(self) -> None:
        stmt = self.stmt
        cast_depths: list[bool] = []  # per open "(": whether it belongs to CAST / TREAT
        type_next = False
        i = 0
        while i < len(stmt):
            tok = stmt[i]
            if type_next:
                type_next = False
                i = self.type_at(i)
                continue
            if tok.kind == "punct" and tok.text == "(":
                opener = self.at(i - 1)
                cast_depths.append(_is(opener, "word") and opener.text in CAST_OPENERS)  # type: ignore[union-attr]
            elif tok.kind == "punct" and tok.text == ")":
                if cast_depths:
                    cast_depths.pop()
            elif tok.kind == "op":
                if tok.text not in OPERATORS:
                    raise _Action(f"uses operator {tok.text}, not a built-in operator on the allow-list")
                type_next = tok.text == "::"
            elif _name(tok):
                if tok.text in DENIED_RELATIONS:
                    raise _Action(f"reads {tok.text}, which {DENIED_RELATIONS[tok.text]}")
                if tok.kind == "word":
                    self.word(i)
                    if tok.text == "as" and cast_depths and cast_depths[-1]:
                        type_next = True
                        i += 1
                        continue
                end = self.chain_end(i)
                nxt = self.at(end + 1)
                if _is(nxt, "punct", "(") and self.is_call(i, end):
                    self.call(i, end)
                elif _is(nxt, "string"):
                    self.literal_type(i, end)
                for part in self.parts(i, end)[1:]:
                    if part.text in DENIED_RELATIONS:
                        raise _Action(f"reads {part.text}, which {DENIED_RELATIONS[part.text]}")
                i = end + 1
                continue
            i += 1
        if type_next:
            raise _Action("a cast without a type name")

    def literal_type(self, start: int, end: int) -> None:
        """`name 'text'` is a typed literal (interval '5 min') unless name is a keyword."""
        parts = self.parts(start, end)
        if start == end and parts[0].kind == "word" and parts[0].text in KEYWORDS:
            return
        if not _builtin_type(parts):
            names = ".".join(p.text for p in parts)
            raise _Action(f"a literal of type {names}, not a built-in type on the allow-list")


def _explain_target(stmt: list[Token]) -> list[Token]:
    """The statement EXPLAIN shows; _Action when EXPLAIN would execute it or an option is unknown."""
    rest = stmt[1:]
    if rest and _is(rest[0], "punct", "("):
        j = _Walk(rest).closing(0)
        options = rest[1:j]
        groups: list[list[Token]] = [[]]
        for tok in options:
            if _is(tok, "punct", ","):
                groups.append([])
            else:
                groups[-1].append(tok)
        for group in groups:
            if not group or group[0].kind != "word" or group[0].text not in EXPLAIN_OPTIONS or len(group) > 2:
                raise _Action("EXPLAIN with an option that is not understood")
            if group[0].text in ("analyze", "analyse"):
                value = group[1].text.lower() if len(group) == 2 else "true"
                if value not in ("false", "off", "0"):
                    raise _Action("EXPLAIN ANALYZE executes the statement")
        return rest[j + 1 :]
    while rest and rest[0].kind == "word" and rest[0].text in ("analyze", "analyse", "verbose"):
        if rest[0].text in ("analyze", "analyse"):
            raise _Action("EXPLAIN ANALYZE executes the statement")
        rest = rest[1:]
    return rest


def _check(stmt: list[Token], functions: list[str]) -> None:
    while stmt and _is(stmt[0], "punct", "(") and len(stmt) > 1:
        stmt = stmt[1:]  # (SELECT ...) UNION (SELECT ...)
    first = stmt[0]
    if first.kind != "word" or first.text not in READ_STARTS:
        raise _Action(f"{first.text.upper()} is not a read-only statement")
    if first.text == "explain":
        inner = _explain_target(stmt)
        if not inner:
            raise _Action("EXPLAIN without a statement")
        _check(inner, functions)
        return
    if first.text == "show":
        if not all(_name(t) or _is(t, "punct", ".") for t in stmt[1:]) or len(stmt) < 2:
            raise _Action("SHOW takes one setting name")
        return
    walk = _Walk(stmt)
    try:
        walk.run()
    finally:
        functions.extend(walk.functions)


def classify_sql(sql: str) -> Classification:
    """Read only when every statement is understood and harmless; SqlSyntaxError when the
    text cannot be read at all (unterminated literal or comment, no statement)."""
    try:
        stmts = statements(tokenize(sql))
    except Undecodable as exc:
        return Classification("action", f"not understood: {exc}")
    if not stmts:
        raise SqlSyntaxError("no SQL statement")
    reasons: list[str] = []
    calls: list[str] = []
    functions: list[str] = []
    for stmt in stmts:
        try:
            _check(stmt, functions)
        except _Action as exc:
            reasons.append(exc.reason)
            calls.extend(exc.calls)
    seen = tuple(dict.fromkeys(functions))
    if not reasons:
        what = "read-only" if len(stmts) == 1 else f"{len(stmts)} read-only statements"
        return Classification("read", what, functions=seen)
    return Classification("action", "; ".join(dict.fromkeys(reasons)), tuple(dict.fromkeys(calls)), seen)
