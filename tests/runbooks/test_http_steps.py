"""```http blocks: reads through the HTTP probe, actions sent once and only when confirmed, with
the target's own credential; secrets never in the confirmation, journal or report.

Each test runs its own loopback HTTP server (127.0.0.1, port 0) that records every request it
receives, so "nothing was sent" is a fact the server reports, not an assumption."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from probes.config import Environment, HttpTarget
from runbooks.conditions import EvalError
from runbooks.journal import Journal
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import (
    Outcome,
    RunContext,
    describe_action,
    execute_action,
    run_runbook,
    run_step,
)

SECRET = "s3cr3t-action-token-7f2c"  # noqa: S105 - a test credential, sent only to loopback
READ_SECRET = "r3ad-only-token-91ab"  # noqa: S105


class Recorder(ThreadingHTTPServer):
    """A loopback server that records (method, path, headers, body) of every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, str], bytes] = (202, {"Content-Type": "application/json"}, b'{"queued": 3}')
        self.delay_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received.append({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                     "body": body})
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        code, headers, payload = self.server.answer
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_PURGE = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _runbook(steps: str, rb_id: str = "hooks") -> Runbook:
    text = f"---\nid: {rb_id}\ntitle: {rb_id}\nseverity: low\n---\n{steps}"
    rb, problems = parse_runbook(text, "hooks.md")
    assert rb is not None, [str(p) for p in problems]
    return rb


def _problems(steps: str) -> list[str]:
    text = f"---\nid: bad\ntitle: bad\nseverity: low\n---\n{steps}"
    rb, problems = parse_runbook(text, "bad.md")
    assert rb is None, "expected load problems"
    return [str(p) for p in problems]


def _env(url: str, **fields: Any) -> Environment:
    target = HttpTarget("hooks", url=f"{url}/health")
    if fields:
        missing = [f for f in fields if f not in {f.name for f in dataclasses.fields(HttpTarget)}]
        if missing:
            pytest.skip(f"HttpTarget has no {', '.join(missing)} yet (probes.config_http integration pending)")
        target = dataclasses.replace(target, **fields)
    return Environment(name="test", http=(target,), timeout_s=2.0)


REDELIVER = """1. **Redeliver the failed webhooks.**
   ```http target=hooks id=redeliver
   POST /webhooks/redeliver?since=10m
   Content-Type: application/json
   X-Requested-By: warroom

   {"deliveries": "failed"}
   ```
"""


# --- loading --------------------------------------------------------------------------------


def test_methods_decide_read_or_action() -> None:
    rb = _runbook(REDELIVER + """2. **The hook endpoint answers.**
   ```http target=hooks id=health
   GET /health
   ```
3. **CORS preflight.**
   ```http target=hooks id=preflight
   OPTIONS /webhooks
   Origin: https://app.example.com
   ```
4. **Purge the cache.**
   ```http target=hooks id=purge
   purge /cache HTTP/1.1
   ```
""")
    kinds = {s.id: (s.kind, s.request.method) for s in rb.steps}
    assert kinds == {"redeliver": ("action", "POST"), "health": ("http", "GET"), "preflight": ("http", "OPTIONS"),
                     "purge": ("action", "PURGE")}
    post = rb.step("redeliver")
    assert post.request.headers == (("Content-Type", "application/json"), ("X-Requested-By", "warroom"))
    assert post.request.body == '{"deliveries": "failed"}' and not post.automatic and post.is_action
    assert rb.step("health").automatic and rb.step("health").passes.text == "status == 'ok'"


@pytest.mark.parametrize(("block", "line", "expected"), [
    ("POST /x\nAuthorization: Bearer abc123", 9, "header Authorization: credentials never come from the runbook text"),
    ("POST /x\nCookie: session=abc", 9, "set it in the target's headers_env"),
    ("POST /x\nX-Api-Key: abc", 9, "header X-Api-Key"),
    ("GET /x\nX-Auth-Token: abc", 9, "header X-Auth-Token"),
    ("GET /x\nX-Client-Secret: abc", 9, "header X-Client-Secret"),
    ("POST /x\nX-Note: Bearer eyJhbGciOi.x.y", 9, "looks like a credential"),
    ("PO$T /x", 8, "unknown method"),
    ("TRACE /x", 8, "TRACE echoes the request"),
    ("POST x/y", 8, "expected a path starting with /"),
    ("POST https://user:pw@127.0.0.1/x", 8, "user-info"),
    ("GET /x?token=abc", 8, "query parameter 'token' carries a credential"),
    ("POST /x\nHost: elsewhere.example", 9, "header Host is set by warroom"),
    ("POST /x\nbroken header line", 9, "expected `Name: value`"),
    ('POST /x\n\n{"password": "hunter22"}', 10, "the body looks like it carries a credential"),
    ("", 7, "holds no request"),
    ("POST /x/{{ steps.a.value | shout }}", 8, "unknown filter"),
])
def test_bad_requests_are_load_problems_at_their_line(block: str, line: int, expected: str) -> None:
    body = "\n".join(f"   {ln}" if ln else "" for ln in block.split("\n"))
    problems = _problems(f"1. **Step.**\n   ```http target=hooks\n{body}\n   ```\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"bad.md:{line}: ```http: ") and expected in problems[0], problems
    assert "abc123" not in problems[0] and "hunter22" not in problems[0]


def test_probe_blocks_refuse_secret_headers_and_headers_env() -> None:
    secret = _problems("1. **Step.**\n   ```probe\n   target: hooks\n   probe: http\n"
                       "   headers: {Authorization: Bearer zzz}\n   ```\n")
    assert len(secret) == 1 and "header Authorization" in secret[0] and "zzz" not in secret[0], secret
    env_key = _problems("1. **Step.**\n   ```probe\n   target: hooks\n   probe: http\n"
                        "   headers_env: {X-Token: HOME}\n   ```\n")
    assert len(env_key) == 1 and "headers_env belongs to the target in the config" in env_key[0], env_key
    # The HTTP keys belong to `probe: http` only.
    other = _problems("1. **Step.**\n   ```probe\n   target: primary\n   probe: locks\n   method: GET\n   ```\n")
    assert len(other) == 1 and "unknown step setting 'method'" in other[0], other


# --- actions: sent once, only when confirmed ------------------------------------------------


async def test_post_is_sent_exactly_once_and_only_after_confirmation(server: Recorder, tmp_path: Path) -> None:
    rb = _runbook(REDELIVER)
    env = _env(server.url)
    step = rb.step("redeliver")
    journal = Journal(tmp_path / "j.sqlite3")
    incident = journal.start_incident(env.name, [rb.id])
    context = RunContext(rb.id, journal=journal, incident_id=incident)

    what = describe_action(step, context, env)
    assert what == (f"send POST {server.url}/webhooks/redeliver?since=10m (24 bytes of application/json) to hooks")

    # run_step never acts; the headless walk (read-only or not), a decline and read-only refuse.
    assert (await run_step(step, env, context=context)).status == Outcome.REFUSED
    for read_only in (True, False):
        report = await run_runbook(rb, env, read_only=read_only, context=context)
        out = report.outcomes[0]
        assert out.status == Outcome.REFUSED and out.summary.startswith("action not run ("), out
        assert what in out.summary
    declined = await execute_action(step, env, context=context, confirmed=False, read_only=False)
    assert declined.status == Outcome.REFUSED and declined.summary == f"not done (declined by the operator): {what}"
    read_only = await execute_action(step, env, context=context, confirmed=True, read_only=True)
    assert read_only.status == Outcome.REFUSED and read_only.summary == f"not done (read-only mode): {what}"
    assert server.received == []  # nothing reached the server

    done = await execute_action(step, env, context=context, confirmed=True, read_only=False)
    assert done.status == Outcome.PASS, done
    assert done.summary.startswith(f"done: {what}: HTTP 202 Accepted"), done.summary
    assert done.value == 202 and done.data["json"] == {"queued": 3} and done.data["status_code"] == 202
    assert len(server.received) == 1
    got = server.received[0]
    assert (got["method"], got["path"], got["body"]) == ("POST", "/webhooks/redeliver?since=10m", b'{"deliveries": "failed"}')
    assert got["headers"]["Content-Type"] == "application/json" and got["headers"]["X-Requested-By"] == "warroom"
    assert "Authorization" not in got["headers"]  # the target has no credential at all

    kinds = [(e.kind, e.status) for e in journal.events(incident) if e.step_id == "redeliver"]
    assert kinds[-3:] == [("action-declined", "refused"), ("action-declined", "refused"), ("action", "pass")], kinds
    actions = journal.export_markdown(incident)
    assert "`redeliver` not run: read-only mode: send POST" in actions and "`redeliver` done: send POST" in actions
    journal.close()


async def test_failed_answers_redirects_and_timeouts(server: Recorder) -> None:
    rb = _runbook(REDELIVER)
    env, step = _env(server.url), rb.step("redeliver")
    server.answer = (500, {"Content-Type": "text/plain"}, b"upstream down " * 1000)
    out = await execute_action(step, env, confirmed=True, read_only=False)
    assert out.status == Outcome.FAIL and "HTTP 500 Internal Server Error: upstream down" in out.summary, out.summary
    assert out.data["bytes"] == 14000 and len(out.data["body"]) <= 4003  # bounded in the journal

    server.answer = (307, {"Location": f"{server.url}/elsewhere"}, b"")
    out = await execute_action(step, env, confirmed=True, read_only=False)
    assert out.status == Outcome.FAIL and f"HTTP 307 Temporary Redirect -> {server.url}/elsewhere" in out.summary
    assert [r["path"] for r in server.received] == ["/webhooks/redeliver?since=10m"] * 2  # never followed

    slow = _runbook(REDELIVER.replace("id=redeliver", "id=redeliver timeout=1")).step("redeliver")
    server.answer, server.delay_s = (202, {}, b""), 3.0
    started = time.perf_counter()
    out = await execute_action(slow, env, confirmed=True, read_only=False)
    assert out.status == Outcome.ERROR and "no answer within 1s" in out.summary and "may have been received" in out.summary
    assert time.perf_counter() - started < 2.5
    assert len(server.received) == 3  # sent once, never retried


async def test_passing_condition_and_report_on_the_answer(server: Recorder) -> None:
    rb = _runbook("""1. **Redeliver.**
   ```http target=hooks id=redeliver pass="data.json.queued > 5" report="queued {{ data.json.queued }}"
   PUT /webhooks/redeliver
   ```
""")
    out = await execute_action(rb.step("redeliver"), _env(server.url), confirmed=True, read_only=False)
    assert out.status == Outcome.FAIL and out.summary.endswith("· queued 3 (wanted data.json.queued > 5)"), out.summary
    assert server.received[0]["method"] == "PUT" and server.received[0]["body"] == b""


async def test_a_full_url_must_stay_on_the_target_origin(server: Recorder) -> None:
    other = Recorder()
    thread = threading.Thread(target=other.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        rb = _runbook(f"""1. **Elsewhere.**
   ```http target=hooks id=away
   DELETE {other.url}/all
   ```
2. **Here, in full.**
   ```http target=hooks id=here
   DELETE {server.url}/one
   ```
""")
        env = _env(server.url)
        with pytest.raises(EvalError, match="is not on hooks's origin"):
            describe_action(rb.step("away"), None, env)
        out = await execute_action(rb.step("away"), env, confirmed=True, read_only=False)
        assert out.status == Outcome.REFUSED and "is not on hooks's origin" in out.summary
        assert other.received == [] and server.received == []
        out = await execute_action(rb.step("here"), env, confirmed=True, read_only=False)
        assert out.status == Outcome.PASS and [r["path"] for r in server.received] == ["/one"]
    finally:
        other.shutdown()
        other.server_close()
        thread.join(5)


async def test_templates_fill_the_request_and_are_checked(server: Recorder) -> None:
    rb = _runbook("""1. **Redeliver one.**
   ```http target=hooks id=one
   POST /webhooks/{{ steps.find.value | name }}/redeliver
   ```
""")
    env, step = _env(server.url), rb.step("one")
    with pytest.raises(EvalError, match="no value yet"):
        describe_action(step, RunContext(), env)
    from runbooks.outcome import StepOutcome

    context = RunContext()
    context.outcomes["find"] = StepOutcome("find", Outcome.FAIL, "", value="dlv_42")
    assert describe_action(step, context, env) == f"send POST {server.url}/webhooks/dlv_42/redeliver (no body) to hooks"
    context.outcomes["find"] = StepOutcome("find", Outcome.FAIL, "", value="../admin x")
    out = await execute_action(step, env, context=context, confirmed=True, read_only=False)
    assert out.status == Outcome.REFUSED and "not a plain name" in out.summary and server.received == []


# --- credentials ----------------------------------------------------------------------------


async def test_action_credential_is_its_own_and_never_shown(server: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rb = _runbook(REDELIVER)
    step = rb.step("redeliver")
    monkeypatch.setenv("WARROOM_TEST_READ_AUTH", f"Bearer {READ_SECRET}")
    reads_only = _env(server.url, headers_env={"Authorization": "WARROOM_TEST_READ_AUTH"})
    # Reads authenticate, actions have no credential: refused before any confirmation.
    with pytest.raises(EvalError, match="no action credential: set action_headers_env on this target"):
        describe_action(step, None, reads_only)
    out = await execute_action(step, reads_only, confirmed=True, read_only=False)
    assert out.status == Outcome.REFUSED and out.summary.startswith("refused: hooks: no action credential")
    assert server.received == []

    env = _env(server.url, headers_env={"Authorization": "WARROOM_TEST_READ_AUTH"},
               action_headers_env={"Authorization": "WARROOM_TEST_ACTION_AUTH"})
    with pytest.raises(EvalError, match="WARROOM_TEST_ACTION_AUTH"):
        describe_action(step, None, env)  # the variable is not set
    monkeypatch.setenv("WARROOM_TEST_ACTION_AUTH", f"Bearer {SECRET}")
    journal = Journal(tmp_path / "j.sqlite3")
    incident = journal.start_incident(env.name, [rb.id])
    context = RunContext(rb.id, journal=journal, incident_id=incident)
    what = describe_action(step, context, env)
    assert what.endswith("to hooks, with its action credential (Authorization)") and SECRET not in what
    report = await run_runbook(rb, env, read_only=False, context=context)
    server.answer = (200, {"Content-Type": "application/json"}, json.dumps({"echo": f"Bearer {SECRET}"}).encode())
    out = await execute_action(step, env, context=context, confirmed=True, read_only=False)
    assert out.status == Outcome.PASS
    assert server.received[0]["headers"]["Authorization"] == f"Bearer {SECRET}"  # the action's own, not the read one
    shown = json.dumps(out.to_json()) + json.dumps(report.to_json()) + journal.export_markdown(incident)
    shown += json.dumps(journal.export_json(incident))
    raw = sqlite3.connect(journal.path).execute("SELECT group_concat(summary || data) FROM events").fetchone()[0]
    journal.close()
    for text in (shown, raw):
        assert SECRET not in text and READ_SECRET not in text
    assert "send POST" in raw


async def test_action_credential_rules_on_a_stand_in_target(server: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The credential rules of runbooks.http_action, on an object with the HttpTarget fields the
    config gains (headers_env, action_headers_env), so they hold before the config has them."""
    from types import SimpleNamespace

    from runbooks.http_action import describe, missing_action_credential, send_action
    from runbooks.http_block import parse_request

    request = parse_request("POST /webhooks/redeliver\n\n{\"all\": true}")
    plain = SimpleNamespace(name="hooks", url=f"{server.url}/health")
    assert missing_action_credential(plain) == ""  # reads need no credential: neither do actions
    userinfo = SimpleNamespace(name="hooks", url=f"http://reader:{READ_SECRET}@127.0.0.1:1/health")
    assert missing_action_credential(userinfo) == ("no action credential: set action_headers_env on this target "
                                                   "(reads send its URL user-info; actions never do)")
    reads = SimpleNamespace(name="hooks", url=f"{server.url}/health", headers_env={"Authorization": "WARROOM_TEST_READ_AUTH"})
    assert missing_action_credential(reads).endswith("(reads send its headers_env; actions never do)")
    both = SimpleNamespace(name="hooks", url=f"{server.url}/health", headers_env={"Authorization": "WARROOM_TEST_READ_AUTH"},
                           action_headers_env={"Authorization": "WARROOM_TEST_ACTION_AUTH"})
    monkeypatch.delenv("WARROOM_TEST_ACTION_AUTH", raising=False)
    assert "WARROOM_TEST_ACTION_AUTH (action_headers_env.Authorization) is not set" in missing_action_credential(both)
    monkeypatch.setenv("WARROOM_TEST_READ_AUTH", f"Bearer {READ_SECRET}")
    monkeypatch.setenv("WARROOM_TEST_ACTION_AUTH", f"Bearer {SECRET}")
    assert missing_action_credential(both) == ""
    what = describe(request, both, "hooks")
    assert what == (f"send POST {server.url}/webhooks/redeliver (13 bytes of application/json) to hooks, "
                    "with its action credential (Authorization)")
    server.answer = (200, {"Content-Type": "application/json", "Set-Cookie": f"sid={SECRET}"},
                     json.dumps({"echo": f"Authorization: Bearer {SECRET}"}).encode())
    names = await send_action(both, request, "hooks", 5.0)
    assert [r["headers"].get("Authorization") for r in server.received] == [f"Bearer {SECRET}"]
    assert names["status"] == "ok" and names["value"] == 200
    assert SECRET not in json.dumps(names) and READ_SECRET not in json.dumps(names), names
    assert names["data"]["headers"]["set-cookie"] == "****"


def _needs_probe_request() -> None:
    from probes import http

    if not hasattr(http, "request"):  # the probe that sends headers, OPTIONS and a body (helper H1)
        pytest.skip("probes.http.request is not there yet (HTTP probe with headers being written)")


# --- reads through the HTTP probe -----------------------------------------------------------


async def test_get_block_is_an_automatic_read_through_the_probe(server: Recorder) -> None:
    _needs_probe_request()
    server.answer = (200, {"Content-Type": "application/json", "Access-Control-Allow-Origin": "https://app.example.com"},
                     b'{"status": "ok", "checked_out": 3, "size": 10}')
    rb = _runbook("""1. **The API allows the app's origin.**
   ```http target=hooks id=cors pass="status == 'ok'"
   OPTIONS /v1/orders
   Origin: https://app.example.com
   Access-Control-Request-Method: POST
   ```
2. **The pool has room.**
   ```http target=hooks id=pool pass="data.json.checked_out / data.json.size < 0.8"
   GET /pool
   ```
""")
    env = _env(server.url)
    report = await run_runbook(rb, env)
    by_id = {o.step_id: o for o in report.outcomes}
    assert by_id["cors"].status == Outcome.PASS and by_id["pool"].status == Outcome.PASS, report.to_json()
    assert [(r["method"], r["path"]) for r in server.received] == [("OPTIONS", "/v1/orders"), ("GET", "/pool")]
    assert server.received[0]["headers"]["Origin"] == "https://app.example.com"
    assert server.received[0]["headers"]["Access-Control-Request-Method"] == "POST"


async def test_probe_block_http_keys_override_the_target(server: Recorder) -> None:
    _needs_probe_request()
    server.answer = (204, {"Access-Control-Allow-Origin": "https://app.example.com"}, b"")
    rb = _runbook("""1. **Preflight passes.**
   ```probe
   id: preflight
   target: hooks
   probe: http
   method: OPTIONS
   path: /v1/orders
   headers: {Origin: "https://app.example.com"}
   expect_status: [200, 204]
   expect_headers: {Access-Control-Allow-Origin: "https://app.example.com"}
   ```
""")
    out = await run_step(rb.step("preflight"), _env(server.url))
    assert out.status == Outcome.PASS, out
    assert [(r["method"], r["path"], r["headers"].get("Origin")) for r in server.received] == [
        ("OPTIONS", "/v1/orders", "https://app.example.com")]
    server.answer = (204, {"Access-Control-Allow-Origin": "https://evil.example.com"}, b"")
    out = await run_step(rb.step("preflight"), _env(server.url))
    assert out.status == Outcome.FAIL, out


# --- the cockpit's confirmation and the CLI ---------------------------------------------------


def _posts(server: Recorder) -> list[dict[str, Any]]:
    return [r for r in server.received if r["method"] == "POST"]  # the live probes GET /health meanwhile


async def test_cockpit_confirmation_names_the_request_and_cancel_sends_nothing(server: Recorder, tmp_path: Path) -> None:
    from tests.tui.test_runbook_ui import until
    from tui.app import make_app
    from tui.screens.confirm import ConfirmAction

    (tmp_path / "hooks.md").write_text(f"---\nid: hooks\ntitle: Webhooks\nseverity: low\n---\n{REDELIVER}")
    env = _env(server.url)
    app = make_app(env, runbook="hooks", runbook_dirs=[tmp_path])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: hasattr(app.screen, "run"), what="the checklist")
        run = app.screen.run
        app.screen.checklist.select_step("redeliver")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the confirmation")
        dialog = app.screen
        assert dialog.target == "hooks"
        assert dialog.what == f"send POST {server.url}/webhooks/redeliver?since=10m (24 bytes of application/json) to hooks"
        assert "POST /webhooks/redeliver?since=10m" in dialog.command
        await pilot.press("enter")  # focus starts on Cancel
        await until(pilot, lambda: run.states["redeliver"].status == "refused", what="the refusal")
        assert _posts(server) == []
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmAction), what="the second confirmation")
        await pilot.press("tab", "enter")  # Run action
        await until(pilot, lambda: run.states["redeliver"].status == "pass", what="the action")
        assert len(_posts(server)) == 1


async def test_cockpit_read_only_never_sends(server: Recorder, tmp_path: Path) -> None:
    from tests.tui.test_runbook_ui import until
    from tui.app import make_app
    from tui.screens.confirm import ConfirmAction

    (tmp_path / "hooks.md").write_text(f"---\nid: hooks\ntitle: Webhooks\nseverity: low\n---\n{REDELIVER}")
    app = make_app(_env(server.url), runbook="hooks", runbook_dirs=[tmp_path], read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: hasattr(app.screen, "run"), what="the checklist")
        run = app.screen.run
        app.screen.checklist.select_step("redeliver")
        await pilot.press("a")
        await until(pilot, lambda: run.states["redeliver"].status == "refused", what="the refusal")
        assert not isinstance(app.screen, ConfirmAction) and "read-only" in run.states["redeliver"].summary
    assert _posts(server) == []


def test_cli_run_never_sends_the_action(server: Recorder, tmp_path: Path) -> None:
    from tests.conftest import warroom

    book = tmp_path / "hooks.md"
    book.write_text(f"---\nid: hooks\ntitle: Webhooks\nseverity: low\n---\n{REDELIVER}")
    config = tmp_path / "warroom.toml"
    config.write_text(f'[environments.test]\n[[environments.test.http]]\nname = "hooks"\nurl = "{server.url}/health"\n')
    for extra in ((), ("--read-only",)):
        done = warroom("runbook", "run", str(book), "--config", str(config), *extra)
        assert "refused" in done.stdout and "action not run (" in done.stdout, done.stdout + done.stderr
        assert f"would send POST {server.url}/webhooks/redeliver" in done.stdout
    assert _posts(server) == []
