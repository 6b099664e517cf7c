"""Masking of passwords in DSNs, URLs and any text that may quote them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "****"

# Every password the configuration has handed out, so that text quoting one verbatim
# (a driver's error message, a traceback) can still be cleaned.
_known: set[str] = set()

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<q>['\"]?)(?P<pw>[^'\"\s]+)(?P=q)", re.I)


def remember(password: str | None) -> None:
    """Register a password so `redact` removes it wherever it appears."""
    if password and len(password) >= 3:
        _known.add(password)


def redact(text: str) -> str:
    """Remove passwords from free text: URL userinfo, key=value pairs, known secrets."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    for pw in sorted(_known, key=len, reverse=True):
        text = text.replace(pw, MASK)
    return text


def mask_url(url: str) -> str:
    """A URL or libpq DSN fit to show: any password replaced by ****."""
    if "://" not in url:
        return redact(url)
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # malformed (e.g. "http://[bad"): fall back to pattern masking
        return redact(url)
    if password is None:
        return redact(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    if port:
        netloc += f":{port}"
    return redact(urlunsplit(parts._replace(netloc=netloc)))
