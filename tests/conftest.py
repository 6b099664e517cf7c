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

        dsn = self.env.postgres_named(target).dsn
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
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
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory), *extra],
        cwd=ROOT,
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
    handle = start_sandbox(directory)
    yield handle
    stop_sandbox(handle)
    shutil.rmtree(directory, ignore_errors=True)
