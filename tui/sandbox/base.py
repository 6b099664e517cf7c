"""What every sandbox component provides, and small helpers they share."""

from __future__ import annotations

import os
import pwd
import socket
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class SandboxError(Exception):
    """A sandbox component could not start or change; the message is for the operator."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the sandbox never listens elsewhere)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether a process exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unprivileged_user() -> str | None:
    """The user to run servers as when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    name = "warroom-sandbox"
    try:
        pwd.getpwnam(name)
    except KeyError:
        import subprocess

        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    return name


class Component(ABC):
    """One part of the sandbox (PostgreSQL pair, Redis, HTTP services, Docker containers).

    Lifecycle: `await start()` (must leave the part healthy: every probe reads ok),
    `config()` (its fragment of the environment table in warroom.toml),
    `await inject(name)` / `await heal(name)` for the scenarios it owns,
    `await stop()` (no process it started may outlive it; idempotent).
    """

    name: str = ""
    scenarios: tuple[str, ...] = ()

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.active: set[str] = set()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """E.g. {"postgres": [{...}, {...}], "thresholds": {"locks": {...}}}."""

    async def inject(self, scenario: str) -> str:
        raise SandboxError(f"{self.name} has no scenario {scenario!r}")

    async def heal(self, scenario: str) -> str:
        raise SandboxError(f"{self.name} has no scenario {scenario!r}")

    @abstractmethod
    async def stop(self) -> None: ...

    def pids(self) -> dict[str, int]:
        """Processes worth knowing about (e.g. {"primary": postmaster pid}) for drills and tests."""
        return {}
