"""Masking of passwords, tokens and keys in DSNs, URLs and any text that may quote them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "****"
# Shorter secrets are not replaced verbatim: masking every "ab" in the output would make it
# unreadable. Such a secret is still masked where its context shows it (URL, key=value).
MIN_KNOWN = 3

# Every secret the configuration has handed out, in every spelling it may be printed in, so
# that text quoting one verbatim (a driver's error message, a traceback) can still be cleaned.
_known: set[str] = set()

_URL_END = r"\s'\"`<>"  # what ends a URL quoted in free text

# URL userinfo. The user part may hold '@' (Azure's user@server). The password runs to the LAST
# '@' of the URL: libpq ends userinfo at the first '@', urllib at the last, and a raw '/', '#'
# or '?' in a password fools both; masking too much is the safe mistake.
_URL_USERINFO = re.compile(
    rf"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/{_URL_END}]*):(?P<pw>(?:(?!://)[^{_URL_END}])*)@"
)
# https://TOKEN@host/: a user name alone in an HTTP URL is how tokens are often passed.
_HTTP_USER = re.compile(rf"(?P<head>\bhttps?://)(?P<user>[^:/@{_URL_END}]+)@(?![^/{_URL_END}]*@)", re.I)
# Query-string and fragment parameters (?token=..., &X-Amz-Signature=..., #access_token=...).
_PARAM = re.compile(rf"(?P<head>[?&#;](?P<name>[\w.%\[\]-]+)=)(?P<value>[^&#;{_URL_END}]*)")
_PARAM_EXACT = {"auth", "code", "pass", "session", "sid", "sas", "jwt"}
_PARAM_LAST = {
    "token", "key", "secret", "signature", "sig", "password", "passwd", "pwd", "credential",
    "credentials", "apikey", "sessionid", "passphrase", "authorization",
}
# Words that name a secret in key=value text: libpq keywords (password, sslpassword,
# oauth_client_secret, scram_client_key), PGPASSWORD=, api_key=, client_secret=, ...
_SECRET_WORD = r"[A-Za-z0-9_]*(?:password|passwd|passphrase|secret|token|api_?key|private_?key|client_key|server_key)"
_VALUE = r"'(?:[^'\\]|\\.|'')*'?|\"(?:[^\"\\]|\\.)*\"?|(?:[^\s\\]|\\.)+"
_KEY_VALUE = re.compile(rf"(?P<head>(?<![\w?&#;]){_SECRET_WORD}\s*=\s*)(?:{_VALUE})", re.I)
_JSON_PAIR = re.compile(rf"(?P<head>\"{_SECRET_WORD}\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.I)
_HEADER = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token|digest|negotiate)\s+)?)[^\s,;'\"]+"
    r"|(?P<head2>\b(?:x-)?(?:api-key|auth-token|access-token)\s*:\s*)[^\s,;'\"]+",
    re.I,
)


def secret_param(name: str) -> bool:
    """Whether a URL parameter of this name carries a secret (token, api_key, X-Amz-Signature...)."""
    word = unquote(name).lower().replace("-", "_").replace(".", "_").strip("[]_")
    return word in _PARAM_EXACT or word in _PARAM_LAST or word.rsplit("_", 1)[-1] in _PARAM_LAST or word.endswith(
        ("token", "secret", "password", "apikey", "signature", "sessionid")
    )


def spellings(secret: str) -> set[str]:
    """The ways a secret may be printed: as given, URL-decoded and -encoded, JSON- and repr-escaped."""
    forms = {secret, unquote(secret), unquote_plus(secret), quote(secret, safe=""), quote_plus(secret),
             quote(secret, safe="!$&'()*+,;=:~@"), repr(secret)[1:-1],
             json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return {form for form in forms if len(form) >= MIN_KNOWN}


def remember(password: str | None) -> None:
    """Register a secret so `redact` removes it, in every spelling, wherever it appears."""
    if isinstance(password, str) and password:
        _known.update(spellings(password))


def _param(match: re.Match[str]) -> str:
    if match["value"] and secret_param(match["name"]):
        return f"{match['head']}{MASK}"
    return match[0]


def redact(text: str) -> str:
    """Remove secrets from free text: URL passwords, secret URL parameters, key=value and JSON
    pairs naming a password/secret/token/key, Authorization headers, and every known secret."""
    if not text:
        return text
    if not isinstance(text, str):  # a caller's slip must not become a leak or a crash
        text = str(text)
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _HTTP_USER.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _PARAM.sub(_param, text)
    text = _KEY_VALUE.sub(lambda m: f"{m['head']}{MASK}", text)
    text = _JSON_PAIR.sub(lambda m: f'{m["head"]}"{MASK}"', text)
    text = _HEADER.sub(lambda m: f"{m['head'] or m['head2']}{MASK}", text)
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: Any) -> str:
    """A URL or libpq DSN fit to show: every password, token and secret parameter replaced by ****.

    Never raises, whatever it is given: a malformed URL is masked by the patterns of `redact`,
    which do not need it to parse.
    """
    if url is None:
        return ""
    return str(redact(url if isinstance(url, str) else str(url)))
