"""`[[environments.X.prometheus]]` and `[[environments.X.alertmanager]]`: typed, checked, secret headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.config import ConfigError, parse_config
from probes.config_sources import DEFAULT_QUERIES
from probes.registry import targets
from probes.secrets import redact
from runbooks.commands import find_target, target_address
from tests.conftest import warroom

SOURCES = '''
[environments.prod]
[[environments.prod.prometheus]]
name = "prom"
url = "http://127.0.0.1:9090/"
headers_env = "WR_PROM_HEADERS"
queries = { pg_up = "pg_up{cluster=\\"main\\"}", redis_up = "" }

[[environments.prod.alertmanager]]
name = "alerts"
url = "http://127.0.0.1:9093"
'''


def test_sources_are_typed_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WR_PROM_HEADERS", "Authorization: Bearer s3cr3t-t0ken\\nX-Scope-OrgID: team-a")
    env = parse_config(SOURCES).environment()
    prom, = env.prometheus
    assert prom.url == "http://127.0.0.1:9090" and prom.headers == (("Authorization", "Bearer s3cr3t-t0ken"), ("X-Scope-OrgID", "team-a"))
    queries = dict(prom.queries)
    assert queries["pg_up"] == 'pg_up{cluster="main"}' and "redis_up" not in queries  # "" turns a query off
    assert queries["probe_success"] == DEFAULT_QUERIES["probe_success"]
    assert [(k, t.name) for k, t in targets(env)] == [("prometheus", "prom"), ("alertmanager", "alerts")]
    assert env.target_names() == ["prom", "alerts"]
    assert find_target(env, "prom", "prometheus")[0] == "prometheus"
    assert find_target(env, "alerts", "")[0] == "alertmanager"
    assert target_address(prom) == "http://127.0.0.1:9090"
    # The header values are secrets: redacted wherever they would show, repr included.
    assert "s3cr3t-t0ken" not in redact("token Bearer s3cr3t-t0ken") and "s3cr3t" not in repr(prom)


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ('url = "ftp://127.0.0.1"', "environments.prod.prometheus[0].url", "http"),
        ('url = "http://127.0.0.1"\nport = 1', "environments.prod.prometheus[0].port", "unknown key"),
        ('url = "http://127.0.0.1"\nqueries = { pg_up = 1 }', "environments.prod.prometheus[0].queries.pg_up", "PromQL string"),
        ('url = "http://127.0.0.1"\nheaders_env = "WR_NOT_SET_ANYWHERE"', "environments.prod.prometheus[0].headers_env",
         "WR_NOT_SET_ANYWHERE is not set"),
    ],
)
def test_bad_source_names_file_line_and_key(extra: str, key: str, expected: str) -> None:
    text = f'[environments.prod]\n[[environments.prod.prometheus]]\nname = "prom"\n{extra}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("w.toml"))
    assert info.value.key == key and expected in info.value.expected, str(info.value)
    assert info.value.line is not None and str(info.value).startswith(f"w.toml:{info.value.line}: ")


def test_bad_headers_never_quote_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WR_BAD_HEADERS", "Bearer-only-hunter2")
    text = '[environments.p]\n[[environments.p.alertmanager]]\nname = "am"\nurl = "http://127.0.0.1:9093"\nheaders_env = "WR_BAD_HEADERS"\n'
    with pytest.raises(ConfigError, match=r"header 1 is not `Name: value`") as info:
        parse_config(text)
    assert "hunter2" not in str(info.value)


def test_source_names_are_unique_with_the_other_targets() -> None:
    text = ('[environments.p]\n[[environments.p.http]]\nname = "x"\nurl = "http://127.0.0.1"\n'
            '[[environments.p.alertmanager]]\nname = "x"\nurl = "http://127.0.0.1:9093"\n')
    with pytest.raises(ConfigError, match="repeated: x"):
        parse_config(text)


def test_check_reports_a_source_that_is_down(tmp_path: Path) -> None:
    """`warroom check` lists the sources' probes; one nobody answers is an error, exit status 1."""
    from tui.sandbox.base import free_port

    config = tmp_path / "warroom.toml"
    config.write_text(f'[environments.p]\n[[environments.p.alertmanager]]\nname = "am"\nurl = "http://127.0.0.1:{free_port()}"\n')
    done = warroom("check", "--config", str(config), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)
    assert (result["kind"], result["probe"], result["status"]) == ("alertmanager", "alerts", "error")
    assert result["summary"] == "am: connection refused (is Alertmanager running?)"
    assert result["data"]["source"] == "alertmanager"
