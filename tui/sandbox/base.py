"""What every sandbox component provides, and small helpers they share."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import socket
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEMO_PREFIX = "warroom-demo-"  # `warroom demo`'s temporary folders, removed when it ends


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


def started_at(pid: int) -> int | None:
    """When a process started (clock ticks since boot, Linux), to tell it from a later one that
    got the same pid; None when unknown (no such process, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return int(fields[19]) if len(fields) > 19 else None  # field 22 of proc(5)


def running(pid: int, started: int | None = None) -> bool:
    """Whether `pid` is a live process (a zombie is not) and, given `started`, still the same one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return pid_alive(pid)  # no /proc here: existence is all we can tell
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):
        return False
    return started is None or started_at(pid) in (None, started)


def traversable(path: Path) -> bool:
    """Whether any user may walk down to `path`: every folder above it has the x bit for others,
    on the path as written (a symlink inside a 0700 folder cannot be followed) and as resolved."""
    parents = {*Path(os.path.abspath(path)).parents, *path.resolve().parents}
    return all(parent.stat().st_mode & 0o001 for parent in parents)


PR_SET_PDEATHSIG = 1


def dies_with_owner(sig: int) -> Callable[[], None] | None:
    """A `preexec_fn` so that a server we start gets `sig` when we end, however we end (Linux).

    The kernel sends it when the *thread* that started the child ends: start servers from the
    main (event loop) thread. Elsewhere there is no such call and the guard alone stops them.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    owner = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != owner:  # we ended before the call above: nobody would send it now
            os._exit(1)

    return arm


class Guard:
    """Our end of the guard process (tui/sandbox/watchdog.py): what it stops and removes for us.

    Each call sends it one JSON line. It acts when that pipe closes: when `close()` is called
    after our own clean stop (little is left to do then) or when we die, SIGKILL included.
    A Guard made without a process (components started on their own, as some tests do) is inert.
    """

    def __init__(self, process: subprocess.Popen[bytes] | None = None) -> None:
        self._process = process

    @classmethod
    def spawn(cls, log: Path | None = None) -> Guard:
        root = Path(__file__).resolve().parents[2]  # where `tui` is importable from
        with open(log or os.devnull, "ab") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tui.sandbox.watchdog"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=root,
                start_new_session=True,  # a Ctrl-C or hang-up meant for us must not reach it
            )
        return cls(process)

    def _send(self, entry: dict[str, Any]) -> None:
        pipe = self._process.stdin if self._process else None
        if pipe is None or pipe.closed:
            return
        try:
            pipe.write(json.dumps(entry).encode() + b"\n")
            pipe.flush()
        except OSError:
            pass  # the guard is gone; our own stop() still runs

    def process(self, pid: int, sig: int, *, group: bool = False) -> None:
        """Stop `pid` with `sig` (then SIGKILL); with `group`, also kill what is left in its group."""
        self._send({"pid": pid, "started": started_at(pid), "signal": int(sig), "group": group})

    def path(self, path: Path) -> None:
        """Remove this file or folder once the processes are stopped."""
        self._send({"path": str(path)})

    def containers(self, engine: str, label: str) -> None:
        """Remove every container carrying `label` ("key=value") on the engine at `engine`."""
        self._send({"engine": engine, "label": label})

    def close(self, timeout: float = 20.0) -> None:
        """Tell the guard we are done and wait (bounded) until it has cleaned up what is left."""
        if self._process is None:
            return
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def warnings_to(log: Path) -> None:
    """Send Python warnings to `log` instead of the operator's terminal (a library's
    RuntimeDirWarning over an SSH login without XDG_RUNTIME_DIR is not for the operator)."""
    import warnings

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as out:
            out.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


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
    What it starts it also reports to `self.guard`, which stops it if the sandbox process dies.
    """

    name: str = ""
    scenarios: tuple[str, ...] = ()

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.active: set[str] = set()
        # The sandbox hands every component its guard before start(): each server, container
        # and temporary folder is reported to it as soon as it exists.
        self.guard = Guard()

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

    def dsns(self) -> dict[str, dict[str, str]]:
        """Connection strings for drills and tests, written to sandbox.json only (never to
        warroom.toml): {"admin": {"primary": superuser DSN}, "app": {...}}."""
        return {}
