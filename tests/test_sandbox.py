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
