"""Shared fixtures: one real sandbox per test session, isolated journal/config dirs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import Environment, load_config

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 90


def warroom(*args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real `warroom` CLI (as `python -m tui.cli`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


class SandboxHandle:
    """A running `warroom sandbox up` process and what it wrote."""

    def __init__(self, directory: Path, process: subprocess.Popen[str], output: list[str]) -> None:
        self.dir = directory
        self.process = process
        self.output = output
        self.config_path = directory / "warroom.toml"
        self.env: Environment = load_config(self.config_path).environment()
        self.state = json.loads((directory / "sandbox.json").read_text())
        self.pids: dict[str, int] = self.state["pids"]

    @property
    def components(self) -> list[str]:
        return self.state["components"]

    def admin_dsn(self, target: str = "primary") -> str:
        """The sandbox's superuser (or Redis default user) for a target, from sandbox.json: for
        a test's own setup and checks. warroom.toml never holds it: warroom reads as
        warroom_read and acts as warroom_operator."""
        return self.state["dsns"]["admin"][target]

    def app_dsn(self, target: str = "primary") -> str:
        """The shop application's role: a session an operator may terminate, a read role may not."""
        return self.state["dsns"]["app"][target]

    def _control(self, action: str, scenario: str) -> str:
        result = warroom("sandbox", action, scenario, "--dir", str(self.dir), timeout=90)
        if result.returncode != 0:
            raise AssertionError(f"sandbox {action} {scenario} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    async def backend_alive(self, pid: int, target: str = "primary") -> bool:
        """Whether a backend still exists; termination is asynchronous, so a killed one gets
        up to two seconds to go."""
        import asyncio

        import psycopg

        async with await psycopg.AsyncConnection.connect(self.admin_dsn(target), autocommit=True) as admin:
            for _ in range(40):
                cursor = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                row = await cursor.fetchone()
                if row is not None and row[0] == 0:
                    return False
                await asyncio.sleep(0.05)
        return True

    def inject(self, scenario: str) -> str:
        return self._control("inject", scenario)

    def heal(self, scenario: str) -> str:
        return self._control("heal", scenario)

    @contextlib.contextmanager
    def scenario(self, name: str) -> Iterator[str]:
        """Inject a scenario for the duration of a block; always heal, even when the test fails."""
        message = self.inject(name)
        try:
            yield message
        finally:
            self.heal(name)


def start_sandbox(directory: Path, *extra: str) -> SandboxHandle:
    from tui.sandbox.http_app import ensure_tokens

    ensure_tokens()  # one set of api tokens for every sandbox of the session and the configs loaded here
    process = subprocess.Popen(
        # --stop-on-eof: the sandbox stops when this pipe closes, so a killed pytest leaves nothing.
        [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory), "--stop-on-eof", *extra],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("ready: "):
            # Keep draining output in the background so the sandbox never blocks on a full pipe.
            import threading

            threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
            return SandboxHandle(directory, process, output)
    process.kill()
    raise RuntimeError("sandbox did not become ready:\n" + "".join(output))


def stop_sandbox(handle: SandboxHandle) -> None:
    handle.process.send_signal(signal.SIGTERM)
    try:
        handle.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        handle.process.kill()
        raise


STRICT_ENV = "WARROOM_STRICT"
# Skips that are not about what the machine lacks, so CI may keep them (each with why).
# every other skip in the suite is a missing engine or tool, which CI installs.
ALLOWED_SKIPS: dict[str, str] = {
    "a Docker engine runs": "the no-Docker path is tested where no engine runs; CI has one",
}


def strict_run() -> bool:
    """CI (CI=true, which .ci/run turns into WARROOM_STRICT=1) allows no skip: a tier that cannot
    run there fails the run, instead of leaving it green without that tier."""
    return os.environ.get(STRICT_ENV) == "1" or os.environ.get("CI", "").lower() in ("true", "1")


def _fail_a_strict_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (report.skipped and strict_run()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(tuple(ALLOWED_SKIPS)):
        report.outcome = "failed"
        report.longrepr = f"skipped in a strict run ({STRICT_ENV}=1 or CI=true), which allows no skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_a_strict_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module-level skip or importorskip, too."""
    outcome = yield
    _fail_a_strict_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Journals and user config go to a temp dir, never the developer's home."""
    data = tmp_path_factory.mktemp("data")
    saved = os.environ.get("WARROOM_DATA_DIR")
    os.environ["WARROOM_DATA_DIR"] = str(data)
    yield
    if saved is None:
        os.environ.pop("WARROOM_DATA_DIR", None)
    else:
        os.environ["WARROOM_DATA_DIR"] = saved


def sandbox_dir() -> Path:
    """A fresh folder the sandbox's unprivileged server user can enter.

    pytest's own temp folders are 0700 under root, and PostgreSQL refuses to run as root,
    so the sandbox lives in its own traversable folder under the system temp dir.
    """
    directory = Path(tempfile.mkdtemp(prefix="warroom-test-"))
    directory.chmod(0o755)
    return directory


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    """The real local sandbox (PostgreSQL primary + replica, Redis, HTTP, Docker when reachable)."""
    directory = sandbox_dir()
    # Without Prometheus and its exporters (tests/prometheusd.py starts a sandbox with them):
    # their connections and scrapes would change what the other tests read.
    handle = start_sandbox(directory, "--no-prometheus")
    yield handle
    stop_sandbox(handle)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus_sandbox() -> Iterator[SandboxHandle]:
    """A sandbox with Prometheus, Alertmanager and the exporters (skips or fails without them:
    tests/prometheusd.py)."""
    from tests.prometheusd import prometheus_sandbox

    yield from prometheus_sandbox()
