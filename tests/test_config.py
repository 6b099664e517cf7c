"""Configuration: typed targets, strict validation, messages naming file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.config import ConfigError, load_config, parse_config
from probes.secrets import mask_url, redact
from tests.conftest import warroom

GOOD = """
refresh = 5

[environments.prod]
banner = "PROD"
production = true

[[environments.prod.postgres]]
name = "primary"
dsn = "postgresql://app:hunter2secret@127.0.0.1:5432/app"
expect_replicas = ["replica"]

[[environments.prod.postgres]]
name = "replica"
dsn_env = "WARROOM_TEST_REPLICA_DSN"
role = "replica"

[[environments.prod.redis]]
name = "jobs"
url = "redis://127.0.0.1:6379/0"
queues = ["celery"]

[[environments.prod.http]]
name = "api"
url = "http://127.0.0.1:8000/health"
latency_warn_ms = 300

[environments.prod.docker]
base_url = "unix:///var/run/docker.sock"

[environments.prod.thresholds.connections]
usage_warn = 0.5

[environments.staging]
[[environments.staging.http]]
name = "api"
url = "http://127.0.0.1:8001/health"
"""


def test_good_config_is_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_TEST_REPLICA_DSN", "postgresql://app@127.0.0.1:5433/app")
    config = parse_config(GOOD)
    env = config.environment()
    assert env.name == "prod" and env.production and env.refresh_s == 5
    assert [t.name for t in env.postgres] == ["primary", "replica"]
    assert env.postgres[1].role == "replica" and env.postgres[1].dsn.endswith(":5433/app")
    assert env.postgres[0].expect_replicas == ("replica",)
    assert env.redis[0].queues == ("celery",)
    assert env.http[0].latency_warn_ms == 300.0
    assert env.thresholds.get("connections", "usage_warn") == 0.5
    assert env.thresholds.get("connections", "usage_fail") == 0.9  # default kept
    assert config.environment("staging").http[0].url.endswith(":8001/health")


def test_password_is_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_TEST_REPLICA_DSN", "postgresql://app@127.0.0.1:5433/app")
    env = parse_config(GOOD).environment()
    target = env.postgres[0]
    assert "hunter2secret" not in repr(target)
    assert "hunter2secret" not in target.display_dsn and "****" in target.display_dsn
    assert mask_url("redis://:pw12345@127.0.0.1:6379/0") == "redis://:****@127.0.0.1:6379/0"
    # A driver message quoting the password verbatim is cleaned too.
    assert "hunter2secret" not in redact("FATAL: bad password hunter2secret for app")
    assert redact("host=db password='s3cr3t!' user=x") == "host=db password=**** user=x"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[environments.p]\n[[environments.p.postgres]]\nname='a'\ndns='x'\n", "environments.p.postgres[0].dns", "unknown key"),
        ("[environments.p]\n[[environments.p.postgres]]\nname='a'\n", "environments.p.postgres[0].dsn", "required"),
        ("[environments.p]\n[[environments.p.postgres]]\nname='a'\ndsn='host=x'\nrole='leader'\n", "role", "primary"),
        ("[environments.p]\n[[environments.p.http]]\nname='a'\nurl='ftp://x'\n", "url", "http://"),
        ("[environments.p]\n[[environments.p.http]]\nname='a'\nurl='http://x'\nmethod='POST'\n", "method", "read-only"),
        ("[environments.p]\nrefresh = -1\n", "refresh", "above 0"),
        ("[environments.p]\n[environments.p.thresholds.locks]\nblocked_fail = 3\n", "blocked_fail", "unknown key"),
        ("[environments.p]\n[environments.p.thresholds.lockz]\n", "lockz", "unknown key"),
        ("refresh = 'fast'\n[environments.p]\n", "refresh", "expected float"),
        ("colour = 'red'\n[environments.p]\n", "colour", "unknown key"),
        ("", "environments", "required"),
    ],
)
def test_bad_config_names_the_key(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/warroom.toml"))
    message = str(info.value)
    assert message.startswith("/etc/warroom.toml")
    assert key in message and expected in message


def test_unknown_key_error_has_line_number() -> None:
    text = "[environments.p]\n\n[[environments.p.postgres]]\nname = 'a'\ndsn = 'x'\nexpect_replica = ['r']\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("w.toml"))
    assert info.value.line == 6 and str(info.value).startswith("w.toml:6:")


def test_malformed_toml_names_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[environments.p]\nname = \n", Path("w.toml"))
    assert "w.toml:2" in str(info.value) and "not valid TOML" in str(info.value)


def test_missing_dsn_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARROOM_NOPE", raising=False)
    text = "[environments.p]\n[[environments.p.postgres]]\nname='a'\ndsn_env='WARROOM_NOPE'\n"
    with pytest.raises(ConfigError, match="WARROOM_NOPE is not set"):
        parse_config(text)


def test_action_credentials_are_optional_secret_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_TEST_ACTION_DSN", "postgresql://op:act10n-pw@127.0.0.1:5432/app")
    monkeypatch.delenv("WARROOM_TEST_UNSET", raising=False)
    text = """[environments.p]
[[environments.p.postgres]]
name = "primary"
dsn = "postgresql://reader@127.0.0.1:5432/app"
action_dsn_env = "WARROOM_TEST_ACTION_DSN"
[[environments.p.postgres]]
name = "replica"
dsn = "postgresql://reader@127.0.0.1:5433/app"
action_dsn_env = "WARROOM_TEST_UNSET"
[[environments.p.postgres]]
name = "other"
dsn = "postgresql://reader@127.0.0.1:5434/app"
[[environments.p.redis]]
name = "jobs"
url = "redis://reader:r34d-pw@127.0.0.1:6379/0"
action_url = "redis://:adm1n-redis-pw@127.0.0.1:6379/0"
"""
    env = parse_config(text).environment()
    primary, replica, other = env.postgres
    assert primary.action_dsn.startswith("postgresql://op:") and primary.action_dsn_env == "WARROOM_TEST_ACTION_DSN"
    # An unset variable is no credential (the cockpit still reads); the variable is remembered
    # so the checklist can say which one to set.
    assert (replica.action_dsn, replica.action_dsn_env) == ("", "WARROOM_TEST_UNSET")
    assert (other.action_dsn, other.action_dsn_env) == ("", "")
    assert env.redis[0].action_url.startswith("redis://:adm1n")
    for secret in ("act10n-pw", "adm1n-redis-pw"):
        assert secret not in repr(env) and secret not in redact(f"failed: {primary.action_dsn} {env.redis[0].action_url}")


@pytest.mark.parametrize(
    ("fields", "key", "expected"),
    [
        ("action_dsn = 'postgresql://a@b/c'\naction_dsn_env = 'X'", "action_dsn", "not both"),
        ("action_dsn = ''", "action_dsn", "must not be empty"),
        ("action_dsn_env = 3", "action_dsn_env", "expected str"),
    ],
)
def test_bad_action_dsn_names_the_key(fields: str, key: str, expected: str) -> None:
    text = f"[environments.p]\n[[environments.p.postgres]]\nname='a'\ndsn='x'\n{fields}\n"
    with pytest.raises(ConfigError, match=rf"environments\.p\.postgres\[0\]\.{key}: .*{expected}"):
        parse_config(text, Path("w.toml"))
    redis = "[environments.p]\n[[environments.p.redis]]\nname='r'\nurl='redis://127.0.0.1/0'\naction_url='http://x'\n"
    with pytest.raises(ConfigError, match=r"redis\[0\]\.action_url: expected a redis://"):
        parse_config(redis, Path("w.toml"))


def test_unknown_environment() -> None:
    config = parse_config("[environments.prod]\n")
    with pytest.raises(ConfigError, match="no environment 'qa'"):
        config.environment("qa")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--config", "{missing}"],
        ["check", "--config", "{bad}"],
        ["--config", "{bad}", "check"],
        ["check", "--timeout", "soon"],
        ["check", "--config", "{good}", "--env", "nope"],
        ["sandbox", "inject", "no-such-fault", "--dir", "{dir}"],
        ["sandbox", "inject", "lock-contention", "--dir", "{dir}"],
    ],
)
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[environments.p]\n[[environments.p.http]]\nname='a'\nurl='http://127.0.0.1:9/'\ntimeout_ms=3\n")
    good = tmp_path / "good.toml"
    good.write_text("[environments.p]\n")
    values = {"missing": str(tmp_path / "missing.toml"), "bad": str(bad), "good": str(good), "dir": str(tmp_path)}
    result = warroom(*[a.format(**values) for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") <= 3  # one clear message (argparse adds a usage line)


@pytest.mark.parametrize(
    ("argv", "only"),
    [
        ([], True),
        (["--config", "x.toml", "--env", "prod", "--refresh", "2", "--read-only"], True),
        (["--runbook", "lock-contention", "--guided"], True),
        (["--config", "x.toml", "check"], False),  # a command after the options
        (["chek"], False),  # a typo gets the whole parser and its "invalid choice" message
        (["--help"], False),
    ],
)
def test_cockpit_options_parse_alike_without_the_commands(argv: list[str], only: bool) -> None:
    from tui.cli import build_parser, cockpit_only

    assert cockpit_only(argv) is only
    if only:
        full = vars(build_parser().parse_args(argv))
        full.pop("command")
        assert vars(build_parser(commands=False).parse_args(argv)) == full


def test_a_mistyped_command_is_named() -> None:
    result = warroom("chek")
    assert result.returncode == 2 and "invalid choice: 'chek'" in result.stderr
