"""The sandbox end to end through the real CLI: `sandbox up/inject/heal/status`, `warroom check`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from tests.conftest import SandboxHandle, sandbox_dir, start_sandbox, stop_sandbox, warroom


def check_json(sandbox: SandboxHandle, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = warroom("check", "--json", "--config", str(sandbox.config_path), *extra)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def by_key(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["target"], r["probe"]): r for r in results}


def wait_for(predicate: Callable[[], Any], *, timeout: float = 45, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def test_fresh_sandbox_is_healthy(sandbox: SandboxHandle) -> None:
    def all_ok() -> list[dict[str, Any]] | None:
        code, results = check_json(sandbox)
        return results if code == 0 else None

    results = wait_for(all_ok, timeout=30)
    kinds = {r["kind"] for r in results}
    assert {"postgres", "redis", "http"} <= kinds
    for result in results:
        assert set(result) >= {"target", "kind", "probe", "status", "summary", "value", "data", "elapsed_ms"}
        assert result["status"] == "ok", result
    text = warroom("check", "--config", str(sandbox.config_path))
    assert text.returncode == 0 and "STATUS" in text.stdout and "ok" in text.stdout


def test_check_reports_injected_faults_and_recovers(sandbox: SandboxHandle) -> None:
    with contextlib.ExitStack() as stack:
        for name in ("lock-contention", "replication-lag", "queue-backlog"):
            stack.enter_context(sandbox.scenario(name))

        def faults_seen() -> dict[tuple[str, str], dict[str, Any]] | None:
            _, results = check_json(sandbox)
            found = by_key(results)
            locks = found[("primary", "locks")]
            lag = found[("replica", "replication")]
            queues = found[("redis", "queues")]
            if locks["status"] == "fail" and lag["status"] in ("warn", "fail") and queues["status"] in ("warn", "fail"):
                return found
            return None

        found = wait_for(faults_seen, timeout=60, interval=2)
        chain = found[("primary", "locks")]["data"]["chains"][0]
        assert isinstance(chain["blocker_pid"], int) and len(chain["blocked"]) >= 3
        replica = found[("replica", "replication")]["data"]
        assert replica["replay_paused"] is True and replica["replay_delay_s"] > 0
        depths = {q["name"]: q["depth"] for q in found[("redis", "queues")]["data"]["queues"]}
        assert max(depths.values()) > 0
    # ExitStack healed all three: the check returns to all-ok.
    wait_for(lambda: check_json(sandbox)[0] == 0, timeout=60, interval=2)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[list[psutil.Process]]:
    """SIGSTOP a server and all its children; always SIGCONT them again."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        yield processes
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)


def test_hung_primary_bounds_check_time(sandbox: SandboxHandle) -> None:
    with stopped(sandbox.pids["primary"]):
        started = time.monotonic()
        code, results = check_json(sandbox, "--timeout", "2")
        elapsed = time.monotonic() - started
    assert elapsed < 5.0, f"check took {elapsed:.1f}s with the primary stopped"
    assert code == 1
    errored = {r["target"] for r in results if r["status"] == "error"}
    assert errored == {"primary"}, [(r["target"], r["probe"], r["summary"]) for r in results if r["status"] != "ok"]
    assert all("timed out" in r["summary"] for r in results if r["target"] == "primary")


def test_sandbox_lifecycle_leaves_no_process() -> None:
    handle = start_sandbox(sandbox_dir(), "--no-docker")
    pids = dict(handle.pids)
    assert {"primary", "replica", "redis"} <= set(pids)
    status = warroom("sandbox", "status", "--dir", str(handle.dir))
    assert status.returncode == 0 and "postgres" in status.stdout
    unknown = warroom("sandbox", "inject", "meteor-strike", "--dir", str(handle.dir))
    assert unknown.returncode == 2 and "known:" in unknown.stderr
    config = handle.config_path.read_text()
    assert "127.0.0.1" in config and "0.0.0.0" not in config
    children = [p.pid for p in psutil.Process(handle.process.pid).children(recursive=True)]
    stop_sandbox(handle)
    assert handle.process.returncode == 0
    time.sleep(0.5)
    survivors = [pid for pid in [*pids.values(), *children] if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"processes outlived the sandbox: {survivors}"
    assert not (handle.dir / "control.sock").exists()
    # The postmasters' own children are gone too.
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"]) if str(handle.dir) in " ".join(p.info["cmdline"] or []) and p.pid != os.getpid()]
    assert leftovers == []
    shutil.rmtree(handle.dir, ignore_errors=True)  # only once it passed: a failure leaves it to look at


@pytest.mark.parametrize("scenario", ["no-such-thing"])
def test_demo_rejects_unknown_scenario(scenario: str) -> None:
    result = warroom("demo", "--scenario", scenario)
    assert result.returncode == 2 and "unknown scenario" in result.stderr and "Traceback" not in result.stderr


# --- the api's CORS, token, /metrics and webhooks, and their scenarios (over real HTTP) ---------


def api_client(sandbox: SandboxHandle) -> Any:
    import httpx

    origin = next(t for t in sandbox.env.http if t.name == "api").url.removesuffix("/health")
    return httpx.Client(base_url=origin, trust_env=False, timeout=5.0)


def counters(text: str) -> dict[str, float]:
    """http_requests_total summed by status (the sandbox writes one sample per line)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("http_requests_total{"):
            labels, _, value = line.rpartition(" ")
            status = labels.split('status="')[1].split('"')[0]
            totals[status] = totals.get(status, 0) + float(value)
    return totals


def test_api_tokens_reach_the_config_through_the_environment_only(sandbox: SandboxHandle) -> None:
    from tui.sandbox.http_app import API_AUTH_ENV, ENV_FILE, OPS_AUTH_ENV

    env_file = sandbox.dir / ENV_FILE
    assert env_file.stat().st_mode & 0o777 == 0o600
    text = env_file.read_text()
    for var in (API_AUTH_ENV, OPS_AUTH_ENV):
        assert os.environ[var].startswith("Bearer ") and f"export {var}='{os.environ[var]}'" in text
        assert os.environ[var] not in sandbox.config_path.read_text()  # names only, never values
        assert os.environ[var] not in (sandbox.dir / "sandbox.json").read_text()
    assert "tokens: . " in "".join(sandbox.output)


def test_cors_broken_drops_the_origin_from_the_preflight_only(sandbox: SandboxHandle) -> None:
    from tui.sandbox.http_app import ORIGIN

    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with api_client(sandbox) as client:
        healthy = client.options("/v1/orders", headers=ask)
        assert healthy.status_code == 204 and healthy.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in healthy.headers["access-control-allow-methods"]
        assert "authorization" in healthy.headers["access-control-allow-headers"].lower()
        other = client.options("/v1/orders", headers={**ask, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers  # never echoes any origin
        with sandbox.scenario("cors-broken"):
            broken = client.options("/v1/orders", headers=ask)
            assert broken.status_code == 204 and "access-control-allow-origin" not in broken.headers
            assert "POST" in broken.headers["access-control-allow-methods"]  # the rest stays
            assert client.get("/v1/orders", headers={"Origin": ORIGIN}).headers["access-control-allow-origin"] == ORIGIN
        assert client.options("/v1/orders", headers=ask).headers["access-control-allow-origin"] == ORIGIN


def test_auth_failure_refuses_the_configured_token(sandbox: SandboxHandle) -> None:
    from tui.sandbox.http_app import API_AUTH_ENV, OPS_AUTH_ENV

    token = {"Authorization": os.environ[API_AUTH_ENV]}
    with api_client(sandbox) as client:
        missing = client.get("/v1/account")
        assert missing.status_code == 401 and 'error="invalid_token"' in missing.headers["www-authenticate"]
        assert client.get("/v1/account", headers={"Authorization": os.environ[OPS_AUTH_ENV]}).status_code == 401
        assert client.get("/v1/account", headers=token).status_code == 200
        with sandbox.scenario("auth-failure"):
            refused = client.get("/v1/account", headers=token)
            assert refused.status_code == 401 and "token not accepted" in refused.headers["www-authenticate"]
        assert client.get("/v1/account", headers=token).json()["account"]["plan"] == "team"


def test_error_rate_climbs_in_metrics_and_the_rollback_resets_it(sandbox: SandboxHandle) -> None:
    with api_client(sandbox) as client:
        before = client.get("/metrics")
        assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert counters(before.text).get("500") == 0 and 'app_build_info{version="2.4.0"} 1' in before.text
        assert "http_request_duration_seconds_bucket{le=\"+Inf\"}" in before.text
        with sandbox.scenario("error-rate"):
            found = wait_for(lambda: (c := counters(client.get("/metrics").text)).get("500", 0) >= 3 and c, timeout=20, interval=0.5)
            assert found["500"] / sum(found.values()) > 0.05, found
            assert 'app_build_info{version="2.5.0"} 1' in client.get("/metrics").text
            assert client.get("/health").status_code == 200  # the health check does not see it
        after = client.get("/metrics").text
        assert counters(after).get("500") == 0 and 'app_build_info{version="2.4.0"} 1' in after


def test_webhook_failures_climb_until_redelivered(sandbox: SandboxHandle) -> None:
    from tui.sandbox.http_app import API_AUTH_ENV, OPS_AUTH_ENV

    with api_client(sandbox) as client:
        healthy = client.get("/webhooks/deliveries").json()
        assert healthy["failed"] == 0 and healthy["last_attempt_ok"] is True and healthy["delivered"] > 0
        assert client.post("/webhooks/redeliver").status_code == 401
        assert client.post("/webhooks/redeliver", headers={"Authorization": os.environ[API_AUTH_ENV]}).status_code == 401
        assert client.get("/webhooks/redeliver").status_code == 405
        with sandbox.scenario("webhook-failures"):
            failing = wait_for(lambda: (d := client.get("/webhooks/deliveries").json())["failed"] >= 2 and d, timeout=10, interval=0.3)
            assert failing["last_attempt_ok"] is False and failing["last_error"].startswith("HTTP 503 from http://127.0.0.1:")
        # Healed: new deliveries succeed, the failed ones wait until someone redelivers them.
        state = wait_for(lambda: (d := client.get("/webhooks/deliveries").json())["last_attempt_ok"] and d, timeout=10, interval=0.3)
        assert state["failed"] >= 2
        ops = {"Authorization": os.environ[OPS_AUTH_ENV]}
        redelivered = client.post("/webhooks/redeliver", headers=ops)
        assert redelivered.status_code == 202 and redelivered.json()["queued"] >= 2
        assert client.get("/webhooks/deliveries").json()["failed"] == 0
        wait_for(lambda: client.get("/webhooks/deliveries").json()["queued_for_redelivery"] == 0, timeout=20, interval=0.5)
        assert client.get("/webhooks/deliveries").json()["failed"] == 0
