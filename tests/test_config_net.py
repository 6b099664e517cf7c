"""DNS and TCP targets in the config: typed, strict, every error naming file, line and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.config import ConfigError, parse_config
from probes.registry import targets
from runbooks.commands import find_target, target_address
from tests.conftest import warroom
from tests.test_config_properties import PATH, _check_error, values, write

GOOD = """
[environments.prod]

[[environments.prod.dns]]
name = "api-dns"
host = "api.example.com"
server = "127.0.0.1:5353"
expect = ["127.0.0.1", "127.0.0.2"]
latency_warn_ms = 50

[[environments.prod.dns]]
name = "mail-mx"
host = "example.com."
type = "mx"

[[environments.prod.dns]]
name = "v6"
host = "api.example.com"
type = "AAAA"
server = "[::1]:53"
expect = ["0:0:0:0:0:0:0:1"]

[[environments.prod.tcp]]
name = "search"
host = "127.0.0.1"
port = 9200
connect_fail_ms = 500

[[environments.prod.tcp]]
name = "smtp"
host = "mail.example.com"
port = 25
"""


def test_dns_and_tcp_targets_are_typed_listed_and_found() -> None:
    env = parse_config(GOOD).environment()
    api, mx, v6 = env.dns
    assert (api.host, api.type, api.server_address, api.server_port) == ("api.example.com", "A", "127.0.0.1", 5353)
    assert api.expect == ("127.0.0.1", "127.0.0.2") and api.latency_warn_ms == 50.0 and api.latency_fail_ms is None
    # The type is case-insensitive; no server means the system resolver.
    assert (mx.type, mx.server, mx.server_address, mx.display_server) == ("MX", "", "", "system resolver")
    assert (v6.server_address, v6.server_port) == ("::1", 53)
    search, smtp = env.tcp
    assert (search.address, search.connect_fail_ms, smtp.address) == ("127.0.0.1:9200", 500.0, "mail.example.com:25")
    assert {"api-dns", "mail-mx", "v6", "search", "smtp"} <= set(env.target_names())
    # The scheduler, `warroom check` and runbook steps all find them.
    kinds = [(kind, t.name) for kind, t in targets(env)]
    assert ("dns", "api-dns") in kinds and ("tcp", "search") in kinds
    assert find_target(env, "search", "tcp") == ("tcp", search)
    assert find_target(env, "api-dns", "dns") == ("dns", api)
    assert target_address(api) == "api.example.com A @ 127.0.0.1:5353" and target_address(search) == "127.0.0.1:9200"
    with pytest.raises(LookupError, match="is a dns target, this step needs a tcp target"):
        find_target(env, "api-dns", "tcp")


def test_thresholds_of_the_new_probes_can_be_set() -> None:
    text = "[environments.p]\n[environments.p.thresholds.dns]\nlatency_warn_ms = 10\n[environments.p.thresholds.tcp]\nconnect_fail_ms = 99\n"
    thresholds = parse_config(text).environment().thresholds
    assert thresholds.of("dns") == {"latency_warn_ms": 10.0, "latency_fail_ms": 1000.0}
    assert thresholds.get("tcp", "connect_fail_ms") == 99.0


DNS = "[environments.p]\n\n[[environments.p.dns]]\nname = 'd'\nhost = 'api.example.com'\n"
TCP = "[environments.p]\n\n[[environments.p.tcp]]\nname = 't'\nhost = '127.0.0.1'\n"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (DNS + "type = 'SRV'\n", "dns[0].type", "expected one of A, AAAA, CNAME, MX, TXT, NS, got 'SRV'"),
        (DNS + "type = 1\n", "dns[0].type", "expected str"),
        (DNS + "server = '127.0.0.1:70000'\n", "dns[0].server", "expected a port from 1 to 65535, got '70000'"),
        (DNS + "server = '127.0.0.1:'\n", "dns[0].server", "expected a port from 1 to 65535"),
        (DNS + "server = 'ns1.example.com:53'\n", "dns[0].server", "expected an IP address with an optional port"),
        (DNS + "server = '[::1:53'\n", "dns[0].server", "IPv6 as"),
        (DNS + "server = ''\n", "dns[0].server", "expected an IP address"),
        (DNS + "expect = '127.0.0.1'\n", "dns[0].expect", "expected list"),
        (DNS + "expect = [1, 2]\n", "dns[0].expect", "expected a list of strings"),
        (DNS + "expect = ['1.2.3']\n", "dns[0].expect", "item 0: expected an IPv4 address for an A record, got '1.2.3'"),
        (DNS + "type = 'AAAA'\nexpect = ['127.0.0.1']\n", "dns[0].expect", "expected an IPv6 address"),
        (DNS + "type = 'MX'\nexpect = ['not a host']\n", "dns[0].expect", "expected a host name for a MX record"),
        (DNS + "latency_fail_ms = 0\n", "dns[0].latency_fail_ms", "above 0"),
        (DNS + "latency_warn_ms = 500\nlatency_fail_ms = 100\n", "dns[0].latency_warn_ms", "must not be above latency_fail_ms"),
        (DNS + "timeout_ms = 3\n", "dns[0].timeout_ms", "unknown key"),
        ("[environments.p]\n[[environments.p.dns]]\nname = 'd'\nhost = 'bad host!'\n", "dns[0].host", "expected a DNS name"),
        ("[environments.p]\n[[environments.p.dns]]\nname = 'd'\nhost = '" + "a" * 64 + ".com'\n", "dns[0].host", "expected a DNS name"),
        ("[environments.p]\n[[environments.p.dns]]\nname = 'd'\n", "dns[0].host", "required key is missing"),
        (TCP, "tcp[0].port", "required key is missing"),
        (TCP + "port = 0\n", "tcp[0].port", "expected a port from 1 to 65535, got 0"),
        (TCP + "port = 65536\n", "tcp[0].port", "expected a port from 1 to 65535"),
        (TCP + "port = '80'\n", "tcp[0].port", "expected int"),
        (TCP + "port = true\n", "tcp[0].port", "expected int"),
        ("[environments.p]\n[[environments.p.tcp]]\nname = 't'\nhost = '127.0.0.1:80'\nport = 80\n", "tcp[0].host", "no port: give it as port"),
        (TCP + "port = 80\nconnect_warn_ms = -1\n", "tcp[0].connect_warn_ms", "above 0"),
        ("[environments.p]\ndns = 'x'\n", "environments.p.dns", "expected list"),
        (DNS + "[[environments.p.tcp]]\nname = 'd'\nhost = '127.0.0.1'\nport = 1\n", "environments.p", "repeated: d"),
        ("[environments.p]\n[environments.p.thresholds.dns]\nlatency_ms_warn = 1\n", "thresholds.dns.latency_ms_warn", "unknown key"),
    ],
)
def test_bad_dns_and_tcp_keys_are_named(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("w.toml"))
    message = str(info.value)
    assert message.startswith("w.toml:") and key in message and expected in message, message


def test_a_bad_key_names_its_own_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(DNS + "type = 'SRV'\n", Path("w.toml"))
    assert info.value.line == 6 and str(info.value).startswith("w.toml:6: environments.p.dns[0].type:")


def test_check_with_a_bad_dns_server_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(DNS + "server = '127.0.0.1:99999'\n")
    result = warroom("check", "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config}:6: environments.p.dns[0].server: expected a port from 1 to 65535" in result.stderr, result.stderr


# --- generated targets: a config or one error naming file, line and key, never a traceback ---

_NET_VALUES = {
    "name": st.sampled_from(["d", "", " "]),
    "host": st.sampled_from(["api.example.com", "a..b", "x" * 70, "127.0.0.1", "[::1]", "h\n", "é.com", "_dmarc.example.com."]),
    "type": st.sampled_from(["A", "aaaa", "MX", "SRV", "", "txt"]),
    "server": st.sampled_from(["127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1", "[::1", "127.0.0.1:²", "127.0.0.1:0", "host:53", ":53", ""]),
    "expect": st.lists(st.sampled_from(["127.0.0.1", "::1", "mail.example.com", "1.2.3", "x y"]), max_size=2),
    "port": st.integers(-1, 70000),
    "latency_warn_ms": st.floats(-1, 2000),
    "connect_fail_ms": st.floats(-1, 2000),
}
_NET_KEYS = {"dns": ["name", "host", "type", "server", "expect", "latency_warn_ms", "timeout"],
             "tcp": ["name", "host", "port", "connect_fail_ms", "server"]}


@st.composite
def net_documents(draw: st.DrawFn) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for kind in draw(st.lists(st.sampled_from(["dns", "tcp"]), unique=True, min_size=1)):
        targets_ = []
        for _ in range(draw(st.integers(1, 2))):
            keys = draw(st.lists(st.sampled_from(_NET_KEYS[kind]), unique=True, min_size=1, max_size=5))
            targets_.append({k: draw(st.one_of(_NET_VALUES[k], values) if k in _NET_VALUES else values) for k in keys})
        env[kind] = targets_
    return {"environments": {"p": env}}


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(net_documents())
def test_generated_dns_and_tcp_targets_give_a_config_or_an_error_naming_file_line_and_key(doc: dict[str, Any]) -> None:
    text, where = write(doc)
    try:
        parse_config(text, PATH)
    except ConfigError as error:
        _check_error(error, where)
        assert "invalid literal" not in str(error) and "Traceback" not in str(error), str(error)
