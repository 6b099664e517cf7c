"""A SQL tokenizer that follows PostgreSQL's own lexical rules (src/backend/parser/scan.l).

The classifier can only be as right as its tokens: a string that ends one character later for
the server than for us hides a call. So every construct is read the way the server reads it:
nested comments, `E''` escapes, `U&''`/`U&""` with `UESCAPE`, dollar quotes whose tag may hold
any non-ASCII character, string continuation across newlines, operators cut the way the server
cuts them, ASCII-only case folding. Where the server's reading depends on a setting we cannot
see (`standard_conforming_strings`), or the text uses a construct this lexer does not decode,
it raises `Undecodable` and the statement is an action.
"""

from __future__ import annotations

from dataclasses import dataclass


class SqlSyntaxError(ValueError):
    """SQL the tokenizer cannot read (unterminated string, comment or quoted identifier)."""


class Undecodable(ValueError):
    """SQL whose meaning this lexer cannot be sure of; the statement is treated as an action."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word / qident / string / number / param / op / punct
    text: str  # words ASCII-lower-cased; qident decoded; strings as written between the quotes
    pos: int


SPACE = " \t\n\r\f\v"
OP_CHARS = "~!@#^&|`?+-*/%<>="
# An operator ending in + or - is cut before them unless it holds one of these (scan.l).
OP_KEEPS_SIGN = "~!@#^&|`?%"
SELF_CHARS = ",()[].;:"
HEX = "0123456789abcdefABCDEF"


def _ident_start(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_" or ord(ch) > 127


def _ident_cont(ch: str) -> bool:
    return _ident_start(ch) or ("0" <= ch <= "9") or ch == "$"


def _fold(word: str) -> str:
    """PostgreSQL folds unquoted identifiers to lower case for ASCII letters only."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in word)


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


def _quote_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the closing quote of a literal whose opening quote is at i."""
    i += 1
    n = len(sql)
    while True:
        if i >= n:
            raise SqlSyntaxError(f"unterminated {quote} quote")
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1


_MOVED_BY_SETTING = "a backslash in a string literal moves its end when standard_conforming_strings is off"


def _agreed_end(sql: str, i: int, *, escape: bool, why: str) -> int:
    """End of the '...' at i read as the server reads it (escape mode or not), when the other
    reading ends at the same place; Undecodable (why) when they differ."""
    end = _quote_end(sql, i, "'", backslash=escape)
    try:
        other = _quote_end(sql, i, "'", backslash=not escape)
    except SqlSyntaxError:
        other = -1
    if other != end:
        raise Undecodable(why)
    return end


def _plain_string_end(sql: str, i: int) -> int:
    """A '...' whose reading depends on standard_conforming_strings: both readings must agree."""
    return _agreed_end(sql, i, escape=False, why=_MOVED_BY_SETTING)


def _continuation(sql: str, i: int) -> int | None:
    """Where a string continues ('a'<newline>'b' is one literal), or None. scan.l allows
    horizontal space, then a newline, then spaces, newlines and -- comments."""
    n, j, newline = len(sql), i, False
    while j < n:
        ch = sql[j]
        if ch in "\n\r":
            newline, j = True, j + 1
        elif ch in SPACE:
            j += 1
        elif newline and sql.startswith("--", j):
            end = sql.find("\n", j)
            if end < 0:
                return None
            j = end
        else:
            break
    if newline and j < n and sql[j] == "'":
        return j
    return None


def _string(sql: str, i: int, body_start: int, *, escape: bool) -> tuple[Token, int]:
    """A string literal, with its continuations; the token's text is its first part."""
    end = _quote_end(sql, body_start, "'", backslash=True) if escape else _plain_string_end(sql, body_start)
    token = Token("string", sql[body_start + 1 : end - 1], i)
    while (nxt := _continuation(sql, end)) is not None:
        # The server reads an escape string's continuation in escape mode; were it not to see
        # a continuation, it would read a plain string: both readings must end at one place.
        why = "an escape string continued on the next line reads differently" if escape else _MOVED_BY_SETTING
        end = _agreed_end(sql, nxt, escape=escape, why=why)
    return token, end


def _uescape(sql: str, i: int) -> tuple[str, int]:
    """An optional UESCAPE 'c' after a U& literal: the escape character and where it ends."""
    j = i
    while j < len(sql) and sql[j] in SPACE:
        j += 1
    if _fold(sql[j : j + 7]) != "uescape" or (j + 7 < len(sql) and _ident_cont(sql[j + 7])):
        return "\\", i
    k = j + 7
    while k < len(sql) and sql[k] in SPACE:
        k += 1
    if sql[k : k + 1] != "'" or sql[k + 2 : k + 3] != "'" or k + 2 >= len(sql):
        raise Undecodable("UESCAPE needs one character in quotes")
    ch = sql[k + 1]
    if ch in HEX or ch in "+'\"" or ch in SPACE:
        raise Undecodable(f"invalid UESCAPE character {ch!r}")
    return ch, k + 3


def _decode_unicode(body: str, escape: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != escape:
            out.append(ch)
            i += 1
            continue
        if body[i + 1 : i + 2] == escape:
            out.append(escape)
            i += 2
        elif body[i + 1 : i + 2] == "+" and len(body) >= i + 8 and all(c in HEX for c in body[i + 2 : i + 8]):
            out.append(_code_point(body[i + 2 : i + 8]))
            i += 8
        elif len(body) >= i + 5 and all(c in HEX for c in body[i + 1 : i + 5]):
            out.append(_code_point(body[i + 1 : i + 5]))
            i += 5
        else:
            raise Undecodable("invalid Unicode escape in a U& literal")
    return "".join(out)


def _code_point(hex_digits: str) -> str:
    value = int(hex_digits, 16)
    if value == 0 or value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise Undecodable("a U& escape names no valid character")  # surrogate pairs: not decoded
    return chr(value)


def _dollar_tag(sql: str, i: int) -> str | None:
    """`$tag$` (or `$$`) starting at i, or None. A tag follows identifier rules, without `$`."""
    j = i + 1
    if j < len(sql) and _ident_start(sql[j]):
        j += 1
        while j < len(sql) and (_ident_start(sql[j]) or "0" <= sql[j] <= "9"):
            j += 1
    if j < len(sql) and sql[j] == "$":
        return sql[i : j + 1]
    return None


def _number_end(sql: str, i: int) -> int:
    n = len(sql)
    if sql[i] == "0" and sql[i + 1 : i + 2] in ("x", "X", "o", "O", "b", "B"):
        j = i + 2
        while j < n and (sql[j] in HEX or sql[j] == "_"):
            j += 1
    else:
        j = i
        while j < n and (sql[j].isascii() and sql[j].isdigit() or sql[j] == "_"):
            j += 1
        if j < n and sql[j] == "." and not sql.startswith("..", j):
            j += 1
            while j < n and (sql[j].isascii() and sql[j].isdigit() or sql[j] == "_"):
                j += 1
        if j < n and sql[j] in "eE":
            k = j + 1
            if k < n and sql[k] in "+-":
                k += 1
            if k < n and sql[k].isascii() and sql[k].isdigit():
                j = k
                while j < n and sql[j].isascii() and sql[j].isdigit():
                    j += 1
    if j < n and _ident_cont(sql[j]):
        raise Undecodable(f"letters right after the number {sql[i:j]!r}")
    return j


def _operator_end(sql: str, i: int) -> int:
    j = i
    while j < len(sql) and sql[j] in OP_CHARS:
        if j > i and (sql.startswith("--", j) or sql.startswith("/*", j)):
            break
        j += 1
    if j - i > 1 and sql[j - 1] in "+-" and not any(c in OP_KEEPS_SIGN for c in sql[i : j - 1]):
        while j - i > 1 and sql[j - 1] in "+-":
            j -= 1
    return j


def tokenize(sql: str) -> list[Token]:  # noqa: C901 - a lexer is one loop of cases
    """The statement's tokens. SqlSyntaxError when unterminated, Undecodable when unsure."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1 : i + 2]
        if ch in SPACE:
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch == "'":
            token, i = _string(sql, i, i, escape=False)
            tokens.append(token)
        elif ch in "eE" and nxt == "'":
            token, i = _string(sql, i, i + 1, escape=True)
            tokens.append(token)
        elif ch in "nN" and nxt == "'":
            token, i = _string(sql, i, i + 1, escape=False)
            tokens.append(token)
        elif ch in "bBxX" and nxt == "'":
            end = sql.find("'", i + 2)
            if end < 0:
                raise SqlSyntaxError("unterminated ' quote")
            body = sql[i + 2 : end]
            if any(c not in HEX for c in body):
                raise Undecodable(f"a {ch.upper()}'' literal holds other characters than digits")
            tokens.append(Token("string", body, i))
            i = end + 1
        elif ch in "uU" and nxt == "&" and sql[i + 2 : i + 3] in ("'", '"'):
            quote = sql[i + 2]
            end = _quote_end(sql, i + 2, quote, backslash=False)
            body = sql[i + 3 : end - 1].replace(quote * 2, quote)
            escape, end = _uescape(sql, end)
            decoded = _decode_unicode(body, escape)
            tokens.append(Token("string" if quote == "'" else "qident", decoded, i))
            i = end
        elif ch == '"':
            end = _quote_end(sql, i, '"', backslash=False)
            body = sql[i + 1 : end - 1].replace('""', '"')
            if not body:
                raise SqlSyntaxError('zero-length "" identifier')
            tokens.append(Token("qident", body, i))
            i = end
        elif ch == "$":
            tag = _dollar_tag(sql, i)
            if tag is not None:
                end = sql.find(tag, i + len(tag))
                if end < 0:
                    raise SqlSyntaxError(f"unterminated {tag} quote")
                tokens.append(Token("string", sql[i + len(tag) : end], i))
                i = end + len(tag)
            elif nxt.isascii() and nxt.isdigit():
                j = i + 1
                while j < n and sql[j].isascii() and sql[j].isdigit():
                    j += 1
                if j < n and _ident_cont(sql[j]):
                    raise Undecodable("letters right after a $n parameter")
                tokens.append(Token("param", sql[i:j], i))
                i = j
            else:
                raise Undecodable("a $ that starts neither a dollar quote nor a parameter")
        elif _ident_start(ch):
            j = i + 1
            while j < n and _ident_cont(sql[j]):
                j += 1
            word = _fold(sql[i:j])
            if word == "uescape":  # one not consumed right after a U& literal
                raise Undecodable("UESCAPE apart from its U& literal")
            tokens.append(Token("word", word, i))
            i = j
        elif (ch.isascii() and ch.isdigit()) or (ch == "." and nxt.isascii() and nxt.isdigit()):
            j = _number_end(sql, i)
            tokens.append(Token("number", sql[i:j], i))
            i = j
        elif ch == ":" and nxt in (":", "="):
            tokens.append(Token("op", sql[i : i + 2], i))
            i += 2
        elif ch == "." and nxt == ".":
            tokens.append(Token("punct", "..", i))
            i += 2
        elif ch in SELF_CHARS:
            tokens.append(Token("punct", ch, i))
            i += 1
        elif ch in OP_CHARS:
            j = _operator_end(sql, i)
            tokens.append(Token("op", sql[i:j], i))
            i = j
        else:
            raise Undecodable(f"unexpected character {ch!r}")
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
