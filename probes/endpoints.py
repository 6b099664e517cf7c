"""The URLs and DSNs a config names, read the way their drivers will read them: checks and secrets.

No driver is imported here: psycopg alone costs ~180 ms, paid before the cockpit's first frame.
libpq's connection-string rules (fe-connect.c: conninfo_parse, conninfo_uri_parse_options) are
mirrored instead, and tests/test_config_properties.py holds the mirror to psycopg's own parser;
Redis and HTTP URLs are read with urllib, as redis-py and warroom's HTTP probe read them.
Messages never quote the value: any part of it may be a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, unquote_plus, urlsplit

from probes.secrets import secret_param

# PQconndefaults() of the libpq psycopg ships (18), plus requiressl, which libpq still maps.
LIBPQ_KEYWORDS = frozenset("""
application_name channel_binding client_encoding connect_timeout dbname fallback_application_name
gssdelegation gssencmode gsslib host hostaddr keepalives keepalives_count keepalives_idle
keepalives_interval krbsrvname load_balance_hosts max_protocol_version min_protocol_version
oauth_client_id oauth_client_secret oauth_issuer oauth_scope options passfile password port
replication require_auth requirepeer scram_client_key scram_server_key service
ssl_max_protocol_version ssl_min_protocol_version sslcert sslcertmode sslcompression sslcrl
sslcrldir sslkey sslkeylogfile sslmode sslnegotiation sslpassword sslrootcert sslsni
target_session_attrs tcp_user_timeout user requiressl
""".split())
LIBPQ_SECRETS = ("password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key")
_SPACE = " \t\n\v\f\r"  # C isspace()
_HEX = "0123456789abcdefABCDEF"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_RAW_HINT = " (a '/', '?', '#' or '@' in a user name or password must be percent-encoded: %2F %3F %23 %40)"
_PORT = "port must be a number from 1 to 65535"


class EndpointError(ValueError):
    """What is wrong with a URL or DSN, phrased without quoting any part of it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a URL or DSN names, as its driver reads it."""

    hosts: tuple[str, ...]
    ports: tuple[str, ...]
    # Every password, token and key in it, as written and as decoded: what `remember` needs.
    secrets: tuple[str, ...]


def check(kind: str, value: str) -> Endpoint:
    """`value` read as a `kind` ("postgres", "redis", "http", "docker") endpoint, or EndpointError."""
    readers = {"postgres": postgres, "redis": redis, "http": http, "docker": docker}
    return readers[kind](value)


# --- PostgreSQL: libpq key=value strings and postgresql:// URIs --------------------------------


def libpq_parse(dsn: str) -> tuple[dict[str, str], list[str]]:
    """(options, raw secrets) as libpq's PQconninfoParse reads `dsn`; EndpointError if it would fail.

    Raw secrets are the password-like values as written (quoted, escaped or %-encoded)."""
    if "\0" in dsn:
        raise EndpointError("contains a NUL character")
    if dsn.startswith(("postgresql://", "postgres://")):
        return _libpq_uri(dsn)
    return _libpq_keywords(dsn)


def _store(options: dict[str, str], name: str, value: str) -> None:
    if name == "requiressl":
        name, value = "sslmode", "require" if value[:1] == "1" else "prefer"
    options[name] = value


def _libpq_keywords(dsn: str) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    raw: list[str] = []
    i, n = 0, len(dsn)
    while i < n:
        if dsn[i] in _SPACE:
            i += 1
            continue
        start = i
        while i < n and dsn[i] != "=" and dsn[i] not in _SPACE:
            i += 1
        name = dsn[start:i]
        while i < n and dsn[i] in _SPACE:
            i += 1
        if i >= n or dsn[i] != "=":
            raise EndpointError(
                "not a valid libpq connection string: a word without \"=\" (a value with spaces "
                "goes in single quotes)"
            )
        i += 1
        while i < n and dsn[i] in _SPACE:
            i += 1
        value: list[str] = []
        quoted = i < n and dsn[i] == "'"
        i += quoted
        begin = i
        while True:
            if i >= n:
                if quoted:
                    raise EndpointError("not a valid libpq connection string: a quoted value is not closed")
                end = i
                break
            char = dsn[i]
            if char == "\\":
                i += 1
                if i < n:
                    value.append(dsn[i])
                    i += 1
                continue
            if (quoted and char == "'") or (not quoted and char in _SPACE):
                end, i = i, i + 1
                break
            value.append(char)
            i += 1
        if name not in LIBPQ_KEYWORDS:
            # The word may be the tail of a password whose space lost its quotes: show it only
            # when the string holds no password at all.
            secretive = any(key in dsn for key in ("password", "secret", "_key"))
            shown = "" if secretive or not re.fullmatch(r"[A-Za-z_]{1,40}", name) else f" {name}"
            raise EndpointError(f"not a valid libpq connection string: unknown keyword{shown}")
        if name in LIBPQ_SECRETS:
            raw.append(dsn[begin:end])
        _store(options, name, "".join(value))
    return options, raw


def _decode(text: str) -> str:
    """libpq's conninfo_uri_decode, then UTF-8 as psycopg decodes the result."""
    text = text.strip(" ")  # libpq trims spaces around a URI part and refuses them inside
    if " " in text:
        raise EndpointError("a space inside a URL (write it as %20)")
    if "%" not in text:
        return text
    data, out, i = text.encode("utf-8", "surrogatepass"), bytearray(), 0
    while i < len(data):
        if data[i] != ord("%"):
            out.append(data[i])
            i += 1
            continue
        pair = data[i + 1 : i + 3].decode("latin-1")
        if len(pair) < 2 or any(c not in _HEX for c in pair):
            raise EndpointError("invalid %-escape (a literal % is written %25)")
        if pair == "00":
            raise EndpointError("%00 is not allowed in a URL")
        out.append(int(pair, 16))
        i += 3
    # psycopg decodes only the values that remain (a later option may replace this one).
    return out.decode("utf-8", "surrogateescape")


def _utf8(options: dict[str, str]) -> dict[str, str]:
    try:
        return {k: v.encode("utf-8", "surrogateescape").decode("utf-8") for k, v in options.items()}
    except UnicodeError:
        raise EndpointError("a %-escape does not decode to UTF-8 text") from None


def _libpq_uri(dsn: str) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    raw: list[str] = []
    s = dsn.split("://", 1)[1]
    n = len(s)
    # Userinfo ends at the first '@' met before any '/': the password cannot hold a raw '@' or '/'.
    at = next((k for k, c in enumerate(s) if c in "@/"), n)
    i = 0
    if at < n and s[at] == "@":
        user, colon, password = s[:at].partition(":")
        if user:
            options["user"] = _decode(user)
        if colon and password:
            raw.append(password)
            options["password"] = _decode(password)
        i = at + 1
    hosts, ports = [], []
    while True:
        if i < n and s[i] == "[":
            close = s.find("]", i + 1)
            if close < 0:
                raise EndpointError("an IPv6 host's [ is not closed by ]")
            if close == i + 1:
                raise EndpointError("an empty IPv6 host []")
            hosts.append(s[i + 1 : close])
            i = close + 1
            if i < n and s[i] not in ":/?,":
                raise EndpointError("unexpected character after an IPv6 host's ] (expected : or /)")
        else:
            start = i
            while i < n and s[i] not in ":/?,":
                i += 1
            hosts.append(s[start:i])
        port = ""
        if i < n and s[i] == ":":
            start = i = i + 1
            while i < n and s[i] not in "/?,":
                i += 1
            port = s[start:i]
        ports.append(port)
        if i >= n or s[i] != ",":
            break
        i += 1
    if ",".join(hosts):
        options["host"] = _decode(",".join(hosts))
    if ",".join(ports):
        options["port"] = _decode(",".join(ports))
    if i < n and s[i] == "/":
        end = s.find("?", i + 1)
        end = n if end < 0 else end
        if s[i + 1 : end]:
            options["dbname"] = _decode(s[i + 1 : end])
        i = end
    if i < n:  # at '?'
        for param in _libpq_params(s[i + 1 :]):
            name, value = param.split("=", 1)
            name, decoded = _decode(name), _decode(value)
            if name == "ssl" and decoded == "true":
                name, decoded = "sslmode", "require"
            if name not in LIBPQ_KEYWORDS:
                shown = f" {name}" if re.fullmatch(r"[A-Za-z_]{1,40}", name) else ""
                raise EndpointError(f"unknown URI query parameter{shown}")
            if name in LIBPQ_SECRETS:
                raw.append(value)
            _store(options, name, decoded)
    return _utf8(options), raw


def _libpq_params(query: str) -> list[str]:
    params = query.split("&") if query else []
    if query.endswith("&"):
        params.pop()  # libpq stops at the end of the string after a trailing '&'
    for param in params:
        if param.count("=") != 1:
            raise EndpointError("every URI query parameter must be one name=value pair")
    return params


def _ports(text: str, hosts: int) -> tuple[str, ...]:
    ports = tuple(text.split(",")) if text else ()
    for port in ports:
        if port and not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
            raise EndpointError(_PORT)
    if len(ports) > 1 and len(ports) != hosts:
        raise EndpointError(f"{len(ports)} ports for {hosts} host(s): give one port, or one per host")
    return ports


def postgres(dsn: str) -> Endpoint:
    """A libpq connection string or postgresql:// URI, checked as libpq will read it."""
    if not dsn.strip():
        raise EndpointError("must not be empty")
    scheme = _SCHEME.match(dsn)
    if scheme and not dsn.startswith(("postgresql://", "postgres://")):
        raise EndpointError(f"expected a postgresql:// URL or libpq key=value pairs, not {scheme[0]}")
    uri = bool(scheme)
    try:
        options, raw = libpq_parse(dsn)
        hosts = tuple(options.get("host", "").split(","))
        ports = _ports(options.get("port", ""), len(hosts))
    except EndpointError as exc:
        hint = _RAW_HINT if uri and _raw_special(dsn) else ""
        raise EndpointError(f"{exc}{hint}") from None
    if uri and any("@" in host for host in hosts):
        raise EndpointError("the host part holds an '@'" + _RAW_HINT)
    secrets = [options[k] for k in LIBPQ_SECRETS if options.get(k)] + raw
    return Endpoint(hosts, ports, tuple(secrets))


def _raw_special(url: str) -> bool:
    """Whether an '@' follows a '/', '?' or '#' after the scheme: a password with a raw one."""
    rest = url.split("://", 1)[1]
    first = next((k for k, c in enumerate(rest) if c in "/?#"), len(rest))
    return "@" in rest[first:]


def postgres_address(dsn: str) -> str | None:
    """host:port of a postgresql:// URI's first host, None for key=value strings; never raises."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        return None
    try:
        options, _ = libpq_parse(dsn)
    except EndpointError:
        return None
    host = options.get("host", "").split(",")[0] or "localhost"
    port = options.get("port", "").split(",")[0] or "5432"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- URLs read with urllib: Redis, HTTP, Docker ------------------------------------------------


def _split(url: str) -> SplitResult:
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise EndpointError("contains a control character (percent-encode it)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        # urllib's message quotes the port, which may be the start of a password.
        problem = "the [ ] around the host do not hold an IPv6 address" if "IPv6" in str(exc) else _PORT
        raise EndpointError(problem + (_RAW_HINT if _raw_special(url) else "")) from None
    if "@" in parts.fragment:
        raise EndpointError("an '@' after a '#'" + _RAW_HINT)
    if parts.port == 0:
        raise EndpointError(_PORT)
    return parts


def _host(parts: SplitResult, url: str) -> str:
    host = parts.hostname or ""
    if not host:
        raise EndpointError("names no host" + (_RAW_HINT if _raw_special(url) else ""))
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):  # urllib has checked the bracketed address, not what follows it
        if "]" not in hostport:
            raise EndpointError("the [ ] around the host do not hold an IPv6 address")
        if hostport.split("]", 1)[1][:1] not in ("", ":"):
            raise EndpointError("unexpected character after an IPv6 host's ] (expected : or /)")
        return host
    if not all(c.isalnum() or c in "._-" for c in host) or host.startswith((".", "-")):
        raise EndpointError("the host name holds a character a host name cannot have")
    return host


def _url_secrets(parts: SplitResult, *, user_is_secret: bool = False) -> tuple[str, ...]:
    found: list[str] = []
    userinfo, at, _ = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        found += [password, unquote(password)]
    elif at and user and user_is_secret:
        found += [user, unquote(user)]
    for params in (parts.query, parts.fragment):
        for pair in re.split(r"[&;]", params):
            name, equals, value = pair.partition("=")
            if equals and value and secret_param(name):
                found += [value, unquote(value), unquote_plus(value)]
    return tuple(found)


def redis(url: str) -> Endpoint:
    """A redis://, rediss:// or unix:// URL, checked as redis-py's from_url reads it."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise EndpointError("expected a redis://, rediss:// or unix:// URL")
    parts = _split(url)
    secrets = _url_secrets(parts)
    if parts.scheme == "unix":
        if not parts.path:
            raise EndpointError("a unix:// URL needs the socket's path (unix:///run/redis.sock)")
        return Endpoint((), (), secrets)
    host = _host(parts, url)
    db = unquote(parts.path).replace("/", "")
    if db and not (db.isascii() and db.isdigit()):
        raise EndpointError("after the host, expected /N, a database number")
    return Endpoint((host,), (str(parts.port or ""),), secrets)


def http(url: str) -> Endpoint:
    """An http:// or https:// URL, checked as the HTTP probe reads it."""
    if not url.startswith(("http://", "https://")):
        raise EndpointError("expected an http:// or https:// URL")
    parts = _split(url)
    host = _host(parts, url)
    return Endpoint((host,), (str(parts.port or ""),), _url_secrets(parts, user_is_secret=True))


def docker(url: str) -> Endpoint:
    """A Docker engine address, checked as docker-py's parse_host reads it."""
    url = url.strip()
    if not url or url == "unix://":
        return Endpoint((), (), ())
    scheme = _SCHEME.match(url)
    if not scheme:
        url = f"tcp://{url}"  # docker-py reads a bare host:port as tcp
    proto = url.split("://", 1)[0]
    if proto not in ("tcp", "http", "https", "ssh", "unix", "http+unix", "npipe"):
        raise EndpointError("expected a unix://, tcp://, ssh:// or npipe:// address")
    parts = _split(url)
    secrets = _url_secrets(parts)
    if parts.password:
        raise EndpointError("an engine address takes no password (use TLS certificates or an ssh key)")
    if parts.query or parts.fragment:
        raise EndpointError("an engine address takes no ?query or #fragment")
    if proto in ("unix", "http+unix", "npipe"):
        return Endpoint((), (), secrets)
    host = _host(parts, url)
    if proto != "ssh" and not parts.port:
        raise EndpointError("a tcp:// engine address needs a port (tcp://127.0.0.1:2375)")
    return Endpoint((host,), (str(parts.port or ""),), secrets)
