"""Property-based tests of the config parser and of the URL/DSN readers behind it.

Whatever the text, `parse_config` returns a Config or raises a ConfigError that names the file,
the key and the key's own line; libpq's rules as mirrored in probes.endpoints agree with
psycopg's real parser; `redact` masks a password whatever characters it holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from probes import endpoints, secrets
from probes.config import Config, ConfigError, parse_config

PATH = Path("/srv/warroom/props.toml")
FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _forget_what_was_remembered() -> Iterator[None]:
    """Random documents hand random "passwords" to `remember`; the rest of the suite must not
    find its output masked by them."""
    saved = set(secrets._known)
    yield
    secrets._known.clear()
    secrets._known.update(saved)


# --- generated documents, written with the line of every key ----------------------------------

class _Huge:
    """An integer of 5000 digits, beyond what tomllib converts (Python's 4300-digit limit)."""

    def __repr__(self) -> str:
        return "HUGE"


HUGE = _Huge()
PIECES = ["a", "b", "é", "0", "1", ":", "@", "/", "?", "#", "%", "%40", "%2F", "%zz", "[", "]", " ", "'", '"', "\\", "=", "&", ",", "\n", "\u0000"]
piece_text = st.lists(st.sampled_from(PIECES), max_size=10).map("".join)
hosts = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "", "h@x", "db.example"])
ports = st.sampled_from(["", ":5432", ":notaport", ":99999", ":0", ":", ":-1", ":65535", ":" + "9" * 5000])
urls = st.builds(
    lambda scheme, user, pw, host, port, rest: f"{scheme}{user}{':' + pw if pw else ''}{'@' if user or pw else ''}{host}{port}{rest}",
    st.sampled_from(["postgresql://", "postgres://", "redis://", "rediss://", "unix://", "http://", "https://", "tcp://", "ftp://", ""]),
    st.sampled_from(["", "u", "user@corp"]),
    piece_text,
    hosts,
    ports,
    st.sampled_from(["", "/db", "/0", "/x", "/db?sslmode=require", "/?token=t0k", "?password=pw", "#frag"]),
)
keyword_dsns = st.lists(
    st.tuples(st.sampled_from(["host", "port", "password", "sslpassword", "hots", "dbname", ""]), piece_text),
    max_size=4,
).map(lambda pairs: " ".join(f"{k}={v}" for k, v in pairs))
scalars = st.one_of(
    st.text(max_size=8),
    urls,
    keyword_dsns,
    st.integers(),
    st.sampled_from([0, -1, 2**64, 10**400, HUGE]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "dsn", "url", "x y"]), inner, max_size=2), max_leaves=3)
TARGET_KEYS = {
    "postgres": ["name", "dsn", "dsn_env", "role", "expect_replicas", "dns", "action_dsn"],
    "redis": ["name", "url", "url_env", "queues", "discover", "scan_count", "action_url"],
    "http": ["name", "url", "method", "expect_status", "latency_warn_ms", "json_field", "json_equals", "timeout_ms"],
}
plausible = {
    "name": st.sampled_from(["a", "b", "primary", ""]),
    "dsn": st.one_of(urls, keyword_dsns),
    "url": urls,
    "role": st.sampled_from(["primary", "replica", "leader"]),
    "method": st.sampled_from(["GET", "HEAD", "POST"]),
    "expect_status": st.integers(0, 700),
    "scan_count": st.integers(-2, 2000),
    "refresh": st.floats(0.1, 10),
    "timeout": st.floats(0.1, 10),
    "runbook_dirs": st.lists(st.sampled_from(["runbooks", "../x", ""]), max_size=2),
    "keys": st.dictionaries(st.sampled_from(["quit", "refresh"]), st.sampled_from(["q", "ctrl+r"])),
    "banner": st.text(max_size=10),
    "production": st.booleans(),
}


def _value_for(key: str) -> st.SearchStrategy[Any]:
    return st.one_of(plausible[key], values) if key in plausible else values


@st.composite
def target(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    # Mostly a name and a URL/DSN with plausible values, so that most examples reach the URL
    # and DSN checks; sometimes anything.
    keys = ["name", "dsn" if kind == "postgres" else "url"] if draw(st.integers(0, 3)) else []
    keys += [k for k in draw(st.lists(st.sampled_from(TARGET_KEYS[kind]), unique=True, max_size=3)) if k not in keys]
    return {key: draw(_value_for(key)) for key in keys}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(["refresh", "timeout", "runbook_dirs", "keys", "colour"]), unique=True, max_size=1)):
        doc[key] = draw(_value_for(key))
    envs: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(["prod", "staging", "x.y", "é"]), unique=True, max_size=2)):
        env: dict[str, Any] = {}
        for kind in draw(st.lists(st.sampled_from(["postgres", "redis", "http"]), unique=True, max_size=3)):
            env[kind] = draw(st.lists(target(kind), min_size=1, max_size=2))
        if draw(st.booleans()):
            env["thresholds"] = {draw(st.sampled_from(["locks", "connections", "lockz"])): {"usage_warn": draw(values)}}
        for key in draw(st.lists(st.sampled_from(["refresh", "banner", "production", "docker"]), unique=True, max_size=2)):
            env[key] = draw(_value_for(key)) if key != "docker" else {"base_url": draw(urls)}
        envs[name] = env
    if envs or draw(st.booleans()):
        doc["environments"] = envs
    return doc


def _key(name: str) -> str:
    return name if name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name) else json.dumps(name)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return ("inf" if value > 0 else "-inf") if abs(value) == float("inf") else repr(value)
    if value is HUGE:
        return "1" + "0" * 5000
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Raw non-ASCII (JSON's surrogate-pair escapes are not TOML); JSON escapes controls but DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"


def _as_header(path: list[str], key: str, value: Any) -> str:
    """How a value is written: "table" ([a.b]), "array" ([[a.b]]) or "inline"."""
    if isinstance(value, dict) and (path in (["environments"],) or key in ("environments", "thresholds", "docker") or path[-1:] == ["thresholds"]):
        return "table"
    if key in TARGET_KEYS and len(path) == 2 and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "array"
    return "inline"


def write(doc: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """The TOML text and, for every key path as the validator names it, the line it is on."""
    lines: list[str] = []
    where: dict[str, int] = {}

    def body(table: dict[str, Any], name: str, path: list[str]) -> None:
        nested = []
        for key, value in table.items():
            full = f"{name}.{key}" if name else key
            how = _as_header(path, key, value)
            if how != "inline":
                nested.append((key, value, how))
                continue
            lines.append(f"{_key(key)} = {_scalar(value)}")
            where[full] = len(lines)
        for key, value, how in nested:
            full = f"{name}.{key}" if name else key
            written = ".".join(_key(p) for p in [*path, key])
            if how == "table":
                lines.append(f"[{written}]")
                where.setdefault(full, len(lines))
                body(value, full, [*path, key])
            else:
                for index, item in enumerate(value):
                    lines.append(f"[[{written}]]")
                    where[f"{full}[{index}]"] = len(lines)
                    body(item, f"{full}[{index}]", [*path, key])

    body(doc, "", [])
    return "\n".join(lines) + "\n", where


def _expected_line(key: str, where: dict[str, int]) -> int | None:
    while key:
        if key in where:
            return where[key]
        key = key[: key.rindex("[")] if key.endswith("]") else key.rpartition(".")[0]
    return None


def _check_error(error: ConfigError, where: dict[str, int] | None = None) -> None:
    message = str(error)
    assert message.startswith(str(PATH)), message
    assert error.key or "TOML" in message, message
    if error.key:
        assert f": {error.key}: " in message, message
    if where is not None and error.key:
        expected = _expected_line(error.key, where)
        assert error.line == expected, (message, expected)


@FAST
@given(documents())
def test_generated_documents_give_a_config_or_an_error_naming_file_line_and_key(doc: dict[str, Any]) -> None:
    text, where = write(doc)
    try:
        config = parse_config(text, PATH)
    except ConfigError as error:
        _check_error(error, where)
    else:
        assert isinstance(config, Config)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list("[]{}=\"'.#\n abc1_-:@/\\\u00e9\t")), max_size=80))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text, PATH)
    except ConfigError as error:
        _check_error(error)


def test_the_writer_and_the_line_finder_agree_on_a_known_document() -> None:
    text = '[environments.prod]\n\n[[environments.prod.postgres]]\nname = "a"\ndsn = "host=x"\n\n[[environments.prod.postgres]]\nname = "b"\ndsn = "postgresql://u:pw@h:notaport/db"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    assert info.value.line == 9 and info.value.key == "environments.prod.postgres[1].dsn"
    assert "pw" not in str(info.value).replace("password", "")


# --- libpq's rules: the mirror against psycopg's parser ----------------------------------------

LIBPQ_PIECES = [*"ab:@/?#%=&,[] '\\\t\n\"", "%40", "%2F", "%00", "%zz", "%ff", "%c3%a9", "host=", "password=", "port=",
                "user=", "ssl=true", "requiressl=1", "é", "sslpassword=", "postgresql://"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(["postgresql://", "postgres://", "", "host=h "]), st.lists(st.sampled_from(LIBPQ_PIECES), max_size=20).map("".join))
def test_libpq_mirror_reads_connection_strings_as_psycopg_does(prefix: str, rest: str) -> None:
    dsn = prefix + rest
    try:
        theirs: dict[str, str] | None = conninfo_to_dict(dsn)
    except (psycopg.Error, UnicodeDecodeError):
        theirs = None
    try:
        mine: dict[str, str] | None = endpoints.libpq_parse(dsn)[0]
    except endpoints.EndpointError:
        mine = None
    assert mine == theirs, dsn
    if mine:
        found = endpoints.libpq_parse(dsn)
        for key in endpoints.LIBPQ_SECRETS:
            if mine.get(key):
                assert mine[key] in found[0].values() and found[1], dsn


def test_libpq_keyword_list_matches_the_installed_libpq() -> None:
    installed = {o.keyword.decode() for o in pq.Conninfo.get_defaults()}
    assert installed <= endpoints.LIBPQ_KEYWORDS, f"libpq knows keywords warroom does not: {installed - endpoints.LIBPQ_KEYWORDS}"


# --- HTTP URLs: what the config accepts, httpx (the probe's client) reads alike -----------------


@settings(max_examples=150, deadline=None, database=None)
@given(urls.filter(lambda u: u.startswith(("http://", "https://"))))
def test_accepted_http_urls_are_read_alike_by_httpx(url: str) -> None:
    try:
        found = endpoints.http(url)
    except endpoints.EndpointError as exc:
        assert "@" not in str(exc) or "'@'" in str(exc)
        return
    parsed = httpx.URL(url)
    assert parsed.host == urlsplit(url).hostname == found.hosts[0]
    assert (parsed.port or None) == (urlsplit(url).port or None)


# --- redact: a password is masked whatever it holds -------------------------------------------

passwords = st.text(alphabet=st.sampled_from([*"abcXYZ019!$&*()+,;=:/?#@[]%~^|\\{}-._", "é", "ü"]), min_size=1, max_size=16)


@pytest.fixture
def nothing_known() -> Iterator[None]:
    saved = set(secrets._known)
    secrets._known.clear()
    yield
    secrets._known.update(saved)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["postgresql", "redis", "http", "https", "tcp"]), st.sampled_from(["", "app", "user@corp"]), passwords, st.booleans())
def test_a_url_password_is_masked_raw_or_encoded(nothing_known: None, scheme: str, user: str, password: str, encode: bool) -> None:
    written = quote(password, safe="") if encode else password
    text = f"error from {scheme}://{user}:{written}@db.internal:5432/app (retrying)"
    assert secrets.redact(text) == f"error from {scheme}://{user}:{secrets.MASK}@db.internal:5432/app (retrying)"


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["password", "sslpassword", "PGPASSWORD", "oauth_client_secret"]), st.text(min_size=1, max_size=16).filter(lambda s: "\x00" not in s), st.sampled_from(["=", " = "]))
def test_a_keyword_password_is_masked_whatever_it_holds(nothing_known: None, key: str, password: str, equals: str) -> None:
    dsn = f"host=db.internal {key}{equals}{_libpq_quote(password)} port=5432"
    assert conninfo_to_dict(dsn.replace("PGPASSWORD", "password")).get("password", password) == password
    assert secrets.redact(dsn) == f"host=db.internal {key}{equals}{secrets.MASK} port=5432"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=60))
def test_mask_url_and_redact_never_raise(text: str) -> None:
    assert isinstance(secrets.mask_url(text), str)
    assert isinstance(secrets.redact(text), str)
