"""The DNS probe against the sandbox's real name server, and one on loopback that never answers.

Every question goes to a server on 127.0.0.1 given as `server`: the system resolver (the
default) is never asked by a test, since it may forward to the outside.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from probes import dns as probe
from probes.config import DnsTarget
from probes.result import Status
from probes.thresholds import Thresholds
from tests.conftest import ROOT, SandboxHandle
from tui.sandbox.base import LOOPBACK


def api_dns(sandbox: SandboxHandle) -> DnsTarget:
    target = next(t for t in sandbox.env.dns if t.name == "api-dns")
    assert target.server_address == LOOPBACK  # never the system resolver
    return target


async def ask(target: DnsTarget, thresholds: Thresholds | None = None, **changes: Any) -> Any:
    [result] = await probe.collect(dataclasses.replace(target, **changes), thresholds or Thresholds(), timeout=2.0)
    return result


async def test_the_sandbox_name_resolves_with_rcode_answers_ttls_time_and_server(sandbox: SandboxHandle) -> None:
    target = api_dns(sandbox)
    result = await ask(target, sandbox.env.thresholds)
    server = f"{LOOPBACK}:{target.server_port}"
    assert result.status is Status.OK, result.summary
    assert (result.kind, result.probe, result.target) == ("dns", "dns", "api-dns")
    data = result.data
    assert data["rcode"] == "NOERROR" and data["server"] == server and data["authoritative"] is True
    assert data["answers"] == [{"name": "api.sandbox.test", "type": "A", "ttl": 300, "value": "127.0.0.1"}]
    assert data["values"] == ["127.0.0.1"] and data["expect_ok"] is True and data["min_ttl"] == 300
    assert 0 < data["query_ms"] == result.value < 300
    assert result.summary.startswith("api-dns: api.sandbox.test A 127.0.0.1 TTL 300 s in ") and result.summary.endswith(f" from {server}")


@pytest.mark.parametrize(
    ("host", "kind", "expect", "answers"),
    [
        ("api.sandbox.test", "AAAA", ["0::1"], [("api.sandbox.test", "AAAA", "::1")]),
        # A CNAME's chain comes with the address; `expect` is about the type asked.
        ("www.sandbox.test", "A", ["127.0.0.1"], [("www.sandbox.test", "CNAME", "api.sandbox.test"), ("api.sandbox.test", "A", "127.0.0.1")]),
        ("www.sandbox.test", "CNAME", ["API.sandbox.test."], [("www.sandbox.test", "CNAME", "api.sandbox.test")]),
        ("sandbox.test", "MX", ["mail.sandbox.test"], [("sandbox.test", "MX", "mail.sandbox.test")]),
        ("sandbox.test", "TXT", ["v=spf1 -all"], [("sandbox.test", "TXT", "v=spf1 -all")]),
        ("sandbox.test", "NS", ["ns1.sandbox.test"], [("sandbox.test", "NS", "ns1.sandbox.test")]),
    ],
)
async def test_every_record_type_and_its_expected_answers(sandbox: SandboxHandle, host: str, kind: str, expect: list[str], answers: list[tuple[str, str, str]]) -> None:
    result = await ask(api_dns(sandbox), host=host, type=kind, expect=tuple(expect))
    assert result.status is Status.OK, result.summary
    assert [(a["name"], a["type"], a["value"]) for a in result.data["answers"]] == answers
    assert all(a["ttl"] > 0 for a in result.data["answers"])
    if kind == "MX":
        assert result.data["answers"][0]["preference"] == 10


async def test_an_unexpected_answer_fails_saying_what_was_seen(sandbox: SandboxHandle) -> None:
    result = await ask(api_dns(sandbox), expect=("10.1.2.3",))
    assert result.status is Status.FAIL and result.data["expect_ok"] is False
    assert "api.sandbox.test A is 127.0.0.1, expected 10.1.2.3" in result.summary, result.summary


@pytest.mark.parametrize(
    ("host", "kind", "rcode", "words"),
    [
        ("missing.sandbox.test", "A", "NXDOMAIN", "NXDOMAIN from 127.0.0.1:{port} for missing.sandbox.test A: no such name"),
        # The sandbox's server never recurses: a name outside its zone is refused, never forwarded.
        ("example.com", "A", "REFUSED", "REFUSED from 127.0.0.1:{port} for example.com A: the server refused"),
        ("api.sandbox.test", "MX", "NOERROR", "no MX record for api.sandbox.test (NOERROR, empty answer from 127.0.0.1:{port})"),
    ],
)
async def test_error_answers_fail_with_their_rcode_and_server(sandbox: SandboxHandle, host: str, kind: str, rcode: str, words: str) -> None:
    target = api_dns(sandbox)
    result = await ask(target, host=host, type=kind, expect=())
    assert result.status is Status.FAIL and result.data["rcode"] == rcode and result.data["values"] == []
    assert words.format(port=target.server_port) in result.summary, result.summary


async def test_a_slow_answer_is_graded_by_the_latency_lines(sandbox: SandboxHandle) -> None:
    result = await ask(api_dns(sandbox), latency_warn_ms=0.0001, latency_fail_ms=None)
    assert result.status is Status.WARN and "slow: " in result.summary and "(warn at" in result.summary, result.summary
    assert result.data["rcode"] == "NOERROR"


async def test_servfail_from_the_dns_failure_scenario(sandbox: SandboxHandle) -> None:
    with sandbox.scenario("dns-failure"):
        result = await ask(api_dns(sandbox), sandbox.env.thresholds)
    assert result.status is Status.FAIL and result.data["rcode"] == "SERVFAIL", result.summary
    assert "SERVFAIL from 127.0.0.1:" in result.summary and "failed to resolve it" in result.summary
    assert (await ask(api_dns(sandbox), sandbox.env.thresholds)).status is Status.OK


async def test_a_server_that_never_answers_is_an_error_within_the_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((LOOPBACK, 0))  # reads nothing, answers nothing
        port = silent.getsockname()[1]
        target = DnsTarget("quiet", "api.sandbox.test", server=f"{LOOPBACK}:{port}", server_address=LOOPBACK, server_port=port)
        started = time.perf_counter()
        [result] = await probe.collect(target, Thresholds(), timeout=0.5)
        took = time.perf_counter() - started
        assert silent.recv(512)  # the question did arrive
    assert 0.45 < took < 1.5, took
    assert result.status is Status.ERROR and result.data["rcode"] == "timeout" and result.data["timeout"] is True
    assert result.summary == f"quiet: no answer from 127.0.0.1:{port} within 500 ms (is the name server up?)"


def test_dnspython_is_imported_only_when_a_question_is_asked() -> None:
    code = (
        "import sys\n"
        "import probes.dns, probes.registry, probes.config\n"
        "probes.config.parse_config(\"[environments.p]\\n[[environments.p.dns]]\\nname='d'\\nhost='a.b'\\nserver='127.0.0.1'\\n\")\n"
        "print(any(m == 'dns' or m.startswith('dns.') for m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
