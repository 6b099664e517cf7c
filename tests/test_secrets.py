"""No secret in any output: the real CLI, the real sandbox's refusals, the journal and its exports.

Each secret below is written the way operators write them (keyword DSNs with quotes, spaces and
escapes; URL passwords with raw or %-encoded '#', '/', '@'; tokens in query strings; a password in
a value of the wrong type), and neither its encoded nor its decoded form may appear in stdout,
stderr, the journal database or an export. Targets are the sandbox's PostgreSQL and Redis with
wrong passwords (so the drivers' real authentication errors are what gets cleaned) and closed
loopback ports (so they fail fast).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from probes import secrets
from probes.config import ConfigError, parse_config
from probes.secrets import MASK, mask_url, redact, remember
from tests.conftest import SandboxHandle, warroom
from tui.sandbox.base import LOOPBACK, free_port
from tui.sandbox.tomlwrite import dumps


@pytest.fixture
def nothing_known() -> Iterator[None]:
    """`redact`'s patterns alone, without the secrets other tests' configs handed to `remember`."""
    saved = set(secrets._known)
    secrets._known.clear()
    yield
    secrets._known.clear()
    secrets._known.update(saved)


# --- the patterns, one case per way a secret is written ----------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("host=db password=plainPw42 user=app", "plainPw42"),
        ("host=db password = 'with space 42' user=app", "with space"),
        ("host=db password='it''s-42' user=app", "it''s-42"),
        (r"host=db password='it\'s-42\\x' user=app", r"it\'s-42"),
        (r"host=db password=unquoted\ space42 port=5", "space42"),
        ("host=db sslpassword=SslKeyPass42 sslkey=/k", "SslKeyPass42"),
        ("host=db oauth_client_secret=OauthSecret42", "OauthSecret42"),
        ("PGPASSWORD=EnvPass42 psql -h db", "EnvPass42"),
        ("postgresql://app:p%40ss%2Fw0rd@db:5432/app", "p%40ss%2Fw0rd"),
        ("postgresql://app:raw#hash?q:42@db:5432/app", "raw#hash?q:42"),
        ("postgresql://app:raw/slash42@db:5432/app", "raw/slash42"),
        ("postgresql://app:raw@at42@db:5432/app", "raw@at42"),
        ("redis://:R3dis-pw42@127.0.0.1:6379/0", "R3dis-pw42"),
        ("postgresql://app@corp:AzurePw42@db/app", "AzurePw42"),
        ("GET http://h/x?token=Tok42&page=2", "Tok42"),
        ("GET http://h/x?page=1&api_key=Key42#top", "Key42"),
        ("GET http://h/x?X-Amz-Signature=Sig42abc&X-Amz-Credential=Cred42/x", "Sig42abc"),
        ("GET http://h/x?X-Amz-Signature=Sig42abc&X-Amz-Credential=Cred42/x", "Cred42"),
        ("redirect to https://h/cb#access_token=Acc42&state=1", "Acc42"),
        ("GET http://h/x?client_secret=Cs42&sig=S42s&auth=Au42&password=Pw42", "Cs42"),
        ("GET http://h/x?client_secret=Cs42&sig=S42s&auth=Au42&password=Pw42", "S42s"),
        ("GET http://h/x?client_secret=Cs42&sig=S42s&auth=Au42&password=Pw42", "Au42"),
        ("GET http://h/x?client_secret=Cs42&sig=S42s&auth=Au42&password=Pw42", "Pw42"),
        ("clone https://ghp_Token42@github.example/x.git", "ghp_Token42"),
        ('{"dsn": "host=h", "password": "Js\\"on42"}', 'Js\\"on42'),
        ("Authorization: Bearer eyJhbGciOi.42.sig", "eyJhbGciOi"),
    ],
)
def test_redact_masks_every_way_a_secret_is_written(nothing_known: None, text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned and MASK in cleaned, cleaned
    assert mask_url(text) == cleaned


def test_redact_leaves_ordinary_text_alone(nothing_known: None) -> None:
    for text in ("postgresql://app@db:5432/app", "redis://127.0.0.1:6379/0", "http://127.0.0.1:8000/health?page=2&q=ok",
                 "password authentication failed for user \"pwuser\"", "key orders:1 has 3 entries"):
        assert redact(text) == text


def test_a_remembered_password_is_masked_in_every_spelling(nothing_known: None) -> None:
    remember('p@ss/w"rd é')
    for spelling in ('p@ss/w"rd é', "p%40ss%2Fw%22rd%20%C3%A9", 'p@ss/w\\"rd \\u00e9', "p%40ss%2Fw%22rd+%C3%A9"):
        assert MASK in redact(f"FATAL: bad password {spelling} for app") and spelling not in redact(spelling)


@pytest.mark.parametrize("value", ["http://[bad", "postgresql://u:p@[::1", "::::", "", "%zz", "\x00", "a" * 10_000])
def test_mask_url_never_raises(value: str) -> None:
    assert isinstance(mask_url(value), str)


def test_config_load_remembers_both_forms_of_an_encoded_password(nothing_known: None) -> None:
    parse_config('[environments.p]\n[[environments.p.postgres]]\nname = "a"\ndsn = "postgresql://app:Enc%40ded%2Fpw@db/app"\n')
    # A driver that quotes the decoded password, as psycopg's own errors can, is cleaned too.
    assert redact("could not authenticate with Enc@ded/pw") == f"could not authenticate with {MASK}"
    assert redact("Enc%40ded%2Fpw") == MASK


# --- the real CLI on the real sandbox ----------------------------------------------------------


@dataclass
class Drill:
    config: Path
    data_dir: Path
    secrets: list[str]  # every form: as written in the config, and as the driver receives it


PG_URL_PW = "Pg@url/pass%word9"  # written %-encoded in the URL
PG_KW_PW = "kw pass'with\\quote9"  # written quoted and escaped in a keyword DSN
PG_SSL_PW = "Ssl-pass-word-9"
PG_RAW_PW = "Raw#hash?q:9"  # libpq accepts '#', '?' and ':' raw in a URL password
REDIS_PW = "Redis@pw/9%x"
REDIS_CLOSED_PW = "Closed-redis-pw9"
HTTP_PW = "Http#pw@9"
TOKENS = {"token": "tok-7f3a9c", "api_key": "key-51d0e2", "signature": "sig-a0b1c2"}
ACCESS_TOKEN = "acc-9e8d7c"


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture(scope="module")
def drill(sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Drill:
    root = tmp_path_factory.mktemp("secrets")
    primary = urlsplit(sandbox.env.postgres_named("primary").dsn)  # type: ignore[union-attr]
    replica = urlsplit(sandbox.env.postgres_named("replica").dsn)  # type: ignore[union-attr]
    redis = urlsplit(sandbox.env.redis[0].url)
    api = next(t for t in sandbox.env.http if t.name == "api").url
    closed = free_port()
    kw_dsn = (f"host={LOOPBACK} port={replica.port} user=pwuser dbname=shop password = {_libpq_quote(PG_KW_PW)} "
              f"sslpassword={PG_SSL_PW} connect_timeout=2")
    query = "&".join(f"{k}={v}" for k, v in TOKENS.items())
    doc = {
        "timeout": 3,
        "environments": {
            "drill": {
                "postgres": [
                    {"name": "primary", "dsn": f"postgresql://pwuser:{quote(PG_URL_PW, safe='')}@{LOOPBACK}:{primary.port}/shop"},
                    {"name": "replica", "role": "replica", "dsn": kw_dsn},
                    {"name": "closed-pg", "dsn": f"postgresql://app:{PG_RAW_PW}@{LOOPBACK}:{closed}/app"},
                ],
                "redis": [
                    {"name": "redis", "url": f"redis://warroom_read:{quote(REDIS_PW, safe='')}@{LOOPBACK}:{redis.port}/0"},
                    {"name": "closed-redis", "url": f"redis://:{REDIS_CLOSED_PW}@{LOOPBACK}:{closed}/0"},
                ],
                "http": [
                    {"name": "api", "url": f"{api}?{query}"},
                    {"name": "closed-http", "url": f"http://svc:{quote(HTTP_PW, safe='')}@{LOOPBACK}:{closed}/health?access_token={ACCESS_TOKEN}"},
                ],
            }
        },
    }
    config = root / "warroom.toml"
    config.write_text(dumps(doc), encoding="utf-8")
    forms = [PG_URL_PW, quote(PG_URL_PW, safe=""), PG_KW_PW, _libpq_quote(PG_KW_PW)[1:-1], PG_SSL_PW, PG_RAW_PW,
             REDIS_PW, quote(REDIS_PW, safe=""), REDIS_CLOSED_PW, HTTP_PW, quote(HTTP_PW, safe=""), ACCESS_TOKEN,
             *TOKENS.values()]
    forms += [json.dumps(f)[1:-1] for f in forms]  # as a JSON export would escape them
    return Drill(config, root / "data", sorted(set(forms)))


def assert_clean(text: str, drill: Drill, where: str) -> None:
    leaked = [s for s in drill.secrets if s in text]
    assert not leaked, f"{where} shows {leaked}:\n{text}"


@pytest.fixture
def data_dir(drill: Drill, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARROOM_DATA_DIR", str(drill.data_dir))
    return drill.data_dir


@pytest.mark.parametrize("output", ["table", "json"])
def test_check_shows_no_secret(drill: Drill, output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # whole summaries: a truncated one could hide a leak
    result = warroom("check", "--config", str(drill.config), *(["--json"] if output == "json" else []), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert_clean(result.stdout + result.stderr, drill, f"check ({output})")
    # The drivers' real refusals were what got cleaned, not a config error before any probe ran.
    assert "password authentication failed" in result.stdout
    assert re.search(r"WRONGPASS|authentication failed at", result.stdout)
    assert "connection refused" in result.stdout
    if output == "json":
        urls = [r["data"]["url"] for r in json.loads(result.stdout) if r["kind"] == "http"]
        assert urls and all(MASK in url for url in urls)


@pytest.mark.parametrize("runbook", ["database-connection-failures", "service-unavailable"])
def test_headless_runbook_journal_and_exports_show_no_secret(drill: Drill, data_dir: Path, runbook: str, tmp_path: Path) -> None:
    run = warroom("runbook", "run", runbook, "--config", str(drill.config), "--timeout", "3", timeout=180)
    assert run.returncode in (0, 1) and "Traceback" not in run.stderr, run.stdout + run.stderr
    assert_clean(run.stdout + run.stderr, drill, f"runbook run {runbook}")
    as_json = warroom("runbook", "run", runbook, "--config", str(drill.config), "--timeout", "3", "--json", timeout=180)
    assert_clean(as_json.stdout + as_json.stderr, drill, f"runbook run {runbook} --json")
    for fmt in ("md", "json"):
        export = warroom("journal", "export", "--format", fmt, timeout=60)
        assert export.returncode == 0, export.stderr
        assert runbook in export.stdout
        assert_clean(export.stdout + export.stderr, drill, f"journal export --format {fmt}")
        written = tmp_path / f"incident.{fmt}"
        assert warroom("journal", "export", "--format", fmt, "-o", str(written), timeout=60).returncode == 0
        assert_clean(written.read_text(encoding="utf-8"), drill, f"journal export -o {written.name}")
    # The journal itself (SQLite file, its WAL), byte for byte.
    raw = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    assert raw and runbook.encode() in raw
    assert_clean(raw.decode("utf-8", "replace"), drill, "the journal database")


# --- values that must stop the config, without quoting the secret ------------------------------

TARGET = "[environments.p]\n\n[[environments.p.{kind}]]\nname = \"t\"\n{line}\n"
BAD = [
    # (kind, the offending line, the secret that must not show, what the message says)
    ("postgres", 'dsn = ["postgresql://u:LstSecret9@h/db"]', "LstSecret9", "expected str, got an array"),
    ("postgres", 'dsn = { password = "TblSecret9" }', "TblSecret9", "expected str, got a table"),
    ("redis", 'url = ["redis://:RdsLstSecret9@h/0"]', "RdsLstSecret9", "expected str, got an array"),
    ("postgres", 'role = "postgresql://u:RoleSecret9@h/db"\ndsn = "host=h"', "RoleSecret9", "primary"),
    ("postgres", 'dsn_typo = "postgresql://u:TypoSecret9@h/db"', "TypoSecret9", "unknown key"),
    ("postgres", 'dsn = "host=h password=Spaced Secret9"', "Secret9", "single quotes"),
    ("postgres", "dsn = \"host=h password='Unclosed9\"", "Unclosed9", "not closed"),
    ("postgres", 'dsn = "host=h password=Frag9 b=c"', "Frag9", "unknown keyword"),
    ("postgres", 'dsn = "postgresql://u:Slash/Secret9@h:5432/db"', "Slash", "percent-encoded"),
    ("postgres", 'dsn = "postgresql://u:At@Secret9@h:5432/db"', "Secret9", "percent-encoded"),
    ("postgres", 'dsn = "postgresql://u:Ipv6Secret9@[::1/db"', "Ipv6Secret9", "IPv6"),
    ("postgres", 'dsn = "postgresql://u:Pct%zzSecret9@h/db"', "Secret9", "%-escape"),
    ("postgres", 'dsn = "postgresql://u:pw@h/db?bogus=QuerySecret9"', "QuerySecret9", "query parameter"),
    ("redis", 'url = "redis://:Hash#Secret9@h:6379/0"', "Hash", "percent-encoded"),
    ("http", 'url = "http://u:Hash#Secret9@h/health"', "Hash", "percent-encoded"),
    ("http", 'url = "http://u:Pw9Secret@h:notaport/x?token=TokSecret9"', "TokSecret9", "port must be"),
]


@pytest.mark.parametrize(("kind", "line", "secret", "says"), BAD, ids=[b[2] for b in BAD])
def test_bad_value_exits_2_naming_file_line_key_without_the_secret(tmp_path: Path, kind: str, line: str, secret: str, says: str) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(TARGET.format(kind=kind, line=line), encoding="utf-8")
    result = warroom("check", "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    key = line.split(" =")[0]
    assert f"{config}:5: environments.p.{kind}[0].{key}: " in result.stderr, result.stderr
    assert says in result.stderr, result.stderr
    assert secret not in result.stdout + result.stderr, result.stderr


MALFORMED = [
    ("postgres", "dsn", "postgresql://u@127.0.0.1:notaport/db"),
    ("postgres", "dsn", "postgresql://u@127.0.0.1:99999/db"),
    ("postgres", "dsn", "postgresql://u@127.0.0.1:0/db"),
    ("postgres", "dsn", "postgresql://u@[::1/db"),
    ("postgres", "dsn", "host=127.0.0.1 port=notaport"),
    ("postgres", "dsn", "host=a,b,c port=1,2"),
    ("postgres", "dsn", "mysql://u@127.0.0.1/db"),
    ("postgres", "dsn", ""),
    ("redis", "url", "redis://127.0.0.1:notaport/0"),
    ("redis", "url", "redis://127.0.0.1:99999/0"),
    ("redis", "url", "redis://[::1/0"),
    ("redis", "url", "redis://127.0.0.1:6379/notadb"),
    ("redis", "url", "redis:///0"),
    ("http", "url", "http://127.0.0.1:notaport/"),
    ("http", "url", "http://127.0.0.1:99999/"),
    ("http", "url", "http://127.0.0.1:0/"),
    ("http", "url", "http://[::1/"),
    ("http", "url", "http://[::1]x/"),
    ("http", "url", "http:///health"),
    ("http", "url", "http://bad host/"),
]


@pytest.mark.parametrize(("kind", "key", "value"), MALFORMED)
def test_malformed_url_or_port_is_a_config_error(kind: str, key: str, value: str) -> None:
    text = f'# drill\n[environments.p]\n[[environments.p.{kind}]]\nname = "t"\n{key} = {json.dumps(value)}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/warroom.toml"))
    assert info.value.line == 5 and info.value.key == f"environments.p.{kind}[0].{key}", str(info.value)
    assert str(info.value).startswith(f"/etc/warroom.toml:5: environments.p.{kind}[0].{key}: ")


def test_malformed_port_through_the_cli_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text('[environments.p]\n[[environments.p.http]]\nname = "api"\nurl = "http://127.0.0.1:99999/"\n')
    result = warroom("check", "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"warroom: {config}:4: environments.p.http[0].url: port must be a number from 1 to 65535"


def test_deeply_nested_or_huge_toml_is_a_config_error(tmp_path: Path) -> None:
    for text in ("x = " + "[" * 2000 + "]" * 2000 + "\n", "[environments.p]\nrefresh = " + "9" * 5000 + "\n"):
        config = tmp_path / "warroom.toml"
        config.write_text(text)
        result = warroom("check", "--config", str(config))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{config}:" in result.stderr and "not valid TOML" in result.stderr


@pytest.mark.parametrize("known", [True, False], ids=["remembered", "patterns-only"])
def test_every_target_as_shown_hides_its_secrets(drill: Drill, known: bool) -> None:
    """What the cockpit and the runbook runner show of a target: its masked DSN/URL, address, repr."""
    config = parse_config(drill.config.read_text(encoding="utf-8"), drill.config)
    saved = set(secrets._known)
    if not known:
        secrets._known.clear()
    try:
        env = config.environment()
        shown = [repr(env)]
        for pg in env.postgres:
            shown += [pg.display_dsn, pg.address]
        for rd in env.redis:
            shown += [rd.display_url]
        for http in env.http:
            shown += [mask_url(http.url)]
        assert_clean("\n".join(shown), drill, f"targets as shown ({'remembered' if known else 'patterns only'})")
        assert f"password = {MASK}" in env.postgres_named("replica").display_dsn  # type: ignore[union-attr]
    finally:
        secrets._known.clear()
        secrets._known.update(saved)


@pytest.mark.parametrize(
    ("kind", "key", "value"),
    [
        ("postgres", "action_dsn", "postgresql://op:ActSecret9@[::1/db"),
        ("postgres", "action_dsn", "postgresql://op:ActSecret9@127.0.0.1:99999/db"),
        ("postgres", "action_dsn", "host=h password=Act Secret9"),
        ("redis", "action_url", "redis://:ActSecret9@[::1/0"),
        ("redis", "action_url", "redis://:Act#Secret9@127.0.0.1:6379/0"),
    ],
)
def test_action_credentials_are_checked_like_the_read_ones(kind: str, key: str, value: str) -> None:
    """action_dsn / action_url go through the same check (_Validator.checked_url) as dsn / url."""
    main = 'dsn = "host=h"' if kind == "postgres" else 'url = "redis://127.0.0.1:6379/0"'
    text = f'[environments.p]\n[[environments.p.{kind}]]\nname = "t"\n{main}\n{key} = {json.dumps(value)}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/warroom.toml"))
    assert str(info.value).startswith(f"/etc/warroom.toml:5: environments.p.{kind}[0].{key}: ")
    assert "Secret9" not in str(info.value)
