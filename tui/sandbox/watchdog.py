"""The sandbox's guard process: when its owner ends, however it ends, stop what the owner started.

`warroom sandbox up` stops its servers itself on SIGINT, SIGTERM and SIGHUP. The guard covers
SIGKILL, a crash or an OOM kill of that process: PostgreSQL, Redis and Docker containers are
not ended by the kernel with it. Its owner (`base.Guard`) sends it one JSON line per thing to
clean up, as each thing comes to exist; the guard acts when that pipe closes (the owner is done,
or dead): it stops the listed processes (their own signal, then SIGKILL), removes the listed
containers, then the listed files and folders, and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.sandbox.base import running

STOP_S = 5.0  # PostgreSQL's immediate shutdown and Redis take well under a second
ENGINE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Server:
    pid: int
    started: int | None
    signal: int
    group: bool


def read_orders(stream: Any) -> tuple[list[Server], list[tuple[str, str]], list[Path]]:
    """Everything the owner sent until it closed the pipe: servers, (engine, label), paths."""
    servers: list[Server] = []
    engines: list[tuple[str, str]] = []
    paths: list[Path] = []
    for line in stream:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by the owner's death
        if "pid" in entry:
            servers.append(Server(int(entry["pid"]), entry.get("started"), int(entry["signal"]), bool(entry.get("group"))))
        elif "engine" in entry:
            engines.append((str(entry["engine"]), str(entry["label"])))
        elif "path" in entry:
            paths.append(Path(entry["path"]))
    return servers, engines, paths


def stop_servers(servers: list[Server]) -> None:
    live = [s for s in servers if running(s.pid, s.started)]  # never signal a reused pid
    for server in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(server.pid, server.signal)
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline and any(running(s.pid, s.started) for s in live):
        time.sleep(0.05)
    for server in live:
        if running(server.pid, server.started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(server.pid, signal.SIGKILL)
        if server.group:
            # What a killed postmaster leaves (backends) shares its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)


def remove_containers(engine: str, label: str) -> None:
    try:
        import docker

        client = docker.DockerClient(base_url=engine, timeout=ENGINE_TIMEOUT_S, version="auto")
        try:
            for info in client.api.containers(all=True, filters={"label": label}):
                with contextlib.suppress(Exception):
                    client.api.remove_container(info["Id"], force=True)
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - an engine gone away has nothing left to remove
        print(f"guard: containers {label} on {engine}: {exc}", file=sys.stderr)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def main() -> None:
    # Our owner's Ctrl-C or hang-up is not for us: we act when the pipe closes.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    servers, engines, paths = read_orders(sys.stdin.buffer)
    stop_servers(servers)
    for engine, label in engines:
        remove_containers(engine, label)
    for path in paths:
        remove_path(path)


if __name__ == "__main__":
    main()
