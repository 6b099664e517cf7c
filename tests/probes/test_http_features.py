"""HTTP target keys (headers, headers_env, expect_*, pass/warn, formats, Basic auth) against a real loopback server."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from probes import http as probe
from probes.config import ConfigError, HttpTarget, parse_config
from probes.config_http import http_target
from probes.result import Status
from runbooks.conditions import compile_condition

ORIGIN = "https://app.example.com"
TOKEN = "tok-9f8e7d6c5b4a3921"
USER, PASSWORD = "ops", "pw-s3cr3t-Basic"
COOKIE = "sid=cookie-value-7788"
METRICS = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{path="/a",status="200"} 90
http_requests_total{path="/b",status="200"} 5
http_requests_total{path="/a",status="500"} 3
http_requests_total{path="/b",status="500"} 2
# TYPE queue_depth gauge
queue_depth 4
"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet test output
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        origin = self.headers.get("Origin")
        cors = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "POST"} if origin == ORIGIN else {}
        if self.path == "/v1/broken-cors":
            cors = {"Access-Control-Allow-Origin": "https://other.example.com"}
        self._send(204, headers=cors)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        auth = self.headers.get("Authorization", "")
        if self.path == "/v1/account":
            if auth != f"Bearer {TOKEN}":
                self._send(401, b'{"error": "unauthorized"}')
                return
            body = {"checked_out": 7, "size": 10, "api_token": TOKEN, "owner": "ops"}
            self._send(200, json.dumps(body).encode(), {"Set-Cookie": COOKIE, "X-Request-Id": "r-1"})
        elif self.path == "/basic":
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            self._send(200 if auth == want else 401, b'{"ok": true}')
        elif self.path == "/metrics":
            self._send(200, METRICS.encode(), content_type="text/plain; version=0.0.4")
        elif self.path == "/text":
            self._send(200, b"service ready, version 2.14.1\n", content_type="text/plain")
        else:
            self._send(404, b'{"error": "no such path"}')


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def target(url: str, **keys: object) -> HttpTarget:
    return http_target({"name": "t", "url": url, **keys}, "environments.p.http[0]")


def config_error(**keys: object) -> str:
    with pytest.raises(ConfigError) as info:
        target("http://127.0.0.1:1/", **keys)
    return str(info.value)


# --- config -----------------------------------------------------------------------------------


def test_keys_are_typed_and_stored() -> None:
    t = target("http://127.0.0.1:1/x", method="options", headers={"Origin": ORIGIN}, headers_env={"Authorization": "X_AUTH"},
               expect_status=[200, 204], expect_headers={"Access-Control-Allow-Origin": f" {ORIGIN} "},
               format="prometheus", body_contains="ok", body_matches=r"v\d+", **{"pass": "status_code == 200", "warn": "1 > 2"})
    assert t.method == "OPTIONS" and t.headers == (("Origin", ORIGIN),) and t.headers_env == (("Authorization", "X_AUTH"),)
    assert t.expect_status == (200, 204) and t.expect_headers == (("Access-Control-Allow-Origin", ORIGIN),)
    assert t.format == "prometheus" and t.body_contains == "ok" and t.body_matches == r"v\d+"
    assert t.pass_when.text == "status_code == 200" and t.warn_when.text == "1 > 2"
    assert target("http://127.0.0.1:1/", expect_status=204).expect_status == (204,)
    assert target("http://127.0.0.1:1/").expect_status == (200,) and target("http://127.0.0.1:1/").method == "GET"


@pytest.mark.parametrize(
    ("keys", "key", "words"),
    [
        ({"method": "POST"}, ".method", "```http action block"),
        ({"method": "DELETE"}, ".method", "GET, HEAD or OPTIONS"),
        ({"headers": {"Origin": 5}}, ".headers.Origin", "expected a string"),
        ({"headers": "Origin: x"}, ".headers", "expected dict"),
        ({"headers": {"Bad Name": "x"}}, ".headers", "not an HTTP header name"),
        ({"headers_env": {"Authorization": "not a var"}}, ".headers_env.Authorization", "environment variable name"),
        ({"expect_status": [200, "204"]}, ".expect_status", "list of them"),
        ({"expect_status": 999}, ".expect_status", "100-599"),
        ({"expect_headers": {"X-A": ["a"]}}, ".expect_headers.X-A", "expected an expected string"),
        ({"format": "xml"}, ".format", "json, prometheus or text"),
        ({"pass": "data.json.size <"}, ".pass", "cannot parse"),
        ({"warn": "__import__('os')"}, ".warn", "only these functions"),
        ({"body_matches": "("}, ".body_matches", "not a regular expression"),
        ({"path": "/x"}, ".path", "unknown key"),  # only over a base target (a runbook block)
    ],
)
def test_bad_keys_name_the_key(keys: dict[str, object], key: str, words: str) -> None:
    message = config_error(**keys)
    assert f"environments.p.http[0]{key}" in message and words in message, message


def test_bad_key_in_a_file_names_file_line_and_key() -> None:
    text = "[environments.p]\n[[environments.p.http]]\nname='a'\nurl='http://127.0.0.1:1/'\nformat='yaml'\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/warroom.toml"))
    assert str(info.value).startswith("/etc/warroom.toml:5: environments.p.http[0].format:")


def test_a_probe_block_overrides_a_base_target() -> None:
    base = target("http://127.0.0.1:1/health", headers_env={"Authorization": "X_AUTH"}, expect_status=200)
    step = http_target({"path": "/v1/orders?x=1", "method": "HEAD", "expect_status": [200, 204]}, "step s1", base=base)
    assert step.url == "http://127.0.0.1:1/v1/orders?x=1" and step.method == "HEAD"
    assert step.expect_status == (200, 204) and step.headers_env == base.headers_env and step.name == "t"
    with pytest.raises(ConfigError, match="action_headers_env: belongs to the target in the config"):
        http_target({"action_headers_env": {"Authorization": "OPS"}}, "step s1", base=base)
    assert target("http://127.0.0.1:1/", action_headers_env={"Authorization": "OPS_TOKEN"}).action_headers_env == (
        ("Authorization", "OPS_TOKEN"),)


# --- against the loopback server ------------------------------------------------------------


async def test_cors_preflight_passes_and_a_wrong_origin_fails(server: str) -> None:
    keys = {"method": "OPTIONS", "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
            "expect_status": [200, 204], "expect_headers": {"access-control-allow-origin": ORIGIN}}
    ok = await probe.request(target(f"{server}/v1/orders", **keys), timeout=2.0)
    assert ok.status is Status.OK, ok.summary
    assert ok.data["headers"]["access-control-allow-origin"] == ORIGIN and ok.data["status_code"] == 204
    wrong = await probe.request(target(f"{server}/v1/orders", **{**keys, "headers": {"Origin": "https://evil.example"}}), timeout=2.0)
    assert wrong.status is Status.FAIL and f"access-control-allow-origin is missing (expected {ORIGIN})" in wrong.summary
    other = await probe.request(target(f"{server}/v1/broken-cors", **keys), timeout=2.0)
    assert other.status is Status.FAIL
    assert f"access-control-allow-origin is 'https://other.example.com' (expected {ORIGIN})" in other.summary


async def test_status_list_in_the_summary(server: str) -> None:
    res = await probe.http(target(f"{server}/nowhere", expect_status=[200, 204]), timeout=2.0)
    assert res.status is Status.FAIL and "HTTP 404 (expected 200 or 204)" in res.summary


async def test_headers_env_token_is_sent_and_never_shown(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    t = target(f"{server}/v1/account", headers_env={"Authorization": "WARROOM_TEST_AUTH"},
               **{"pass": "data.json.checked_out / data.json.size < 0.8", "warn": "data.json.checked_out / data.json.size >= 0.6"})
    monkeypatch.delenv("WARROOM_TEST_AUTH", raising=False)
    missing = await probe.http(t, timeout=2.0)
    assert missing.status is Status.ERROR and "WARROOM_TEST_AUTH is not set" in missing.summary
    monkeypatch.setenv("WARROOM_TEST_AUTH", f"Bearer {TOKEN}")
    res = await probe.http(t, timeout=2.0)
    assert res.data["status_code"] == 200, res.summary
    # 7/10: passes (< 0.8) but warns (>= 0.6), the condition text in the summary
    assert res.status is Status.WARN and "warn condition holds: data.json.checked_out / data.json.size >= 0.6" in res.summary
    assert res.data["json"]["checked_out"] == 7 and res.data["json"]["api_token"] == "****"
    assert res.data["headers"]["set-cookie"] == "****" and res.data["headers"]["x-request-id"] == "r-1"
    dumped = json.dumps(res.to_json()) + repr(res) + repr(t) + res.summary
    assert TOKEN not in dumped and "cookie-value-7788" not in dumped
    failing = await probe.http(target(f"{server}/v1/account", headers_env={"Authorization": "WARROOM_TEST_AUTH"},
                                      **{"pass": "data.json.size < 5"}), timeout=2.0)
    assert failing.status is Status.FAIL and "pass condition failed: data.json.size < 5" in failing.summary


async def test_url_user_info_is_sent_as_basic_auth_and_masked(server: str) -> None:
    plain = await probe.http(target(f"{server}/basic"), timeout=2.0)
    assert plain.data["status_code"] == 401
    authed = target(server.replace("http://", f"http://{USER}:{PASSWORD}@") + "/basic")
    res = await probe.http(authed, timeout=2.0)
    assert res.status is Status.OK and res.data["status_code"] == 200, res.summary
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    shown = json.dumps(res.to_json()) + repr(res) + repr(authed) + res.summary
    assert PASSWORD not in shown and basic not in shown and "****" in res.data["url"]


async def test_prometheus_format_and_metric(server: str) -> None:
    t = target(f"{server}/metrics", format="prometheus", **{"pass": 'metric("http_requests_total", status="500") < 1'})
    res = await probe.http(t, timeout=2.0)
    samples = res.data["metrics"]["samples"]
    assert {"name": "queue_depth", "labels": {}, "value": 4.0} in samples
    assert res.status is Status.FAIL and 'pass condition failed: metric("http_requests_total", status="500") < 1' in res.summary
    names = {"data": res.data}
    assert compile_condition('metric("http_requests_total", status="500")').evaluate(names) == 5.0
    assert compile_condition('metric("http_requests_total", status="500", path="/a")').evaluate(names) == 3.0
    assert compile_condition('metric("http_requests_total")').evaluate(names) == 100.0
    assert compile_condition('metric("http_requests_total", status="404")').evaluate(names) is None
    assert compile_condition('metric("nope")').evaluate(names) is None
    ratio = 'metric("http_requests_total", status="500") <= 0.1 * metric("http_requests_total")'
    ok = await probe.http(target(f"{server}/metrics", format="prometheus", **{"pass": ratio}), timeout=2.0)
    assert ok.status is Status.OK, ok.summary
    text = await probe.http(target(f"{server}/text", format="prometheus"), timeout=2.0)
    assert text.status is Status.FAIL and "not a Prometheus exposition" in text.summary


async def test_body_contains_and_matches(server: str) -> None:
    assert (await probe.http(target(f"{server}/text", body_contains="ready"), timeout=2.0)).status is Status.OK
    miss = await probe.http(target(f"{server}/text", body_contains="degraded"), timeout=2.0)
    assert miss.status is Status.FAIL and "body does not contain 'degraded'" in miss.summary
    assert (await probe.http(target(f"{server}/text", body_matches=r"version 2\.\d+"), timeout=2.0)).status is Status.OK
    nomatch = await probe.http(target(f"{server}/text", body_matches=r"version 3\."), timeout=2.0)
    assert nomatch.status is Status.FAIL and "body does not match" in nomatch.summary


def test_keyword_arguments_only_for_metric() -> None:
    with pytest.raises(ValueError, match="keyword arguments are not allowed"):
        compile_condition("round(1.5, ndigits=1)")


async def test_a_literal_secret_header_is_masked_too(server: str) -> None:
    t = target(f"{server}/v1/account", headers={"Authorization": f"Bearer {TOKEN}"})
    res = await probe.http(t, timeout=2.0)
    assert res.status is Status.OK, res.summary
    assert TOKEN not in repr(t) + json.dumps(res.to_json()) + res.summary
    bad = await probe.http(target(f"{server}/v1/account", headers={"Authorization": "Bearer wrong-token-123"}), timeout=2.0)
    assert bad.status is Status.FAIL and "HTTP 401 (expected 200)" in bad.summary and "wrong-token-123" not in repr(bad)
