"""Sandbox Docker containers (busybox, no network) and the container-crashloop scenario.

Containers of one sandbox run are named "wr-<id>-web|worker|cache|batch" and labelled
warroom.sandbox=<id>, so stop() removes exactly them and other containers on the same engine
are never touched. Network rule: every container runs with network "none" (its own loopback
only); the image is made here by `docker import` of the local busybox-static binary, never pulled.

  web     httpd on 127.0.0.1:8080 inside its own network namespace; health = a file + a GET
  worker  idle loop; health = /tmp/ok exists (container-crashloop removes it: unhealthy)
  cache   idle loop; health = /tmp/ok exists
  batch   created, not started; container-crashloop starts it: `sleep 1; exit 3`, restarted by
          policy on-failure:20 (a bounded loop: it gives up by itself after 20 restarts)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from tui.sandbox.base import Component, SandboxError, pid_alive

IMAGE_REPO, IMAGE_TAG = "warroom/busybox", "latest"
IMAGE = f"{IMAGE_REPO}:{IMAGE_TAG}"
LABEL = "warroom.sandbox"
OWNER_LABEL = "warroom.owner"  # "<hostname>:<pid>" of the process that started the container
DEFAULT_URL = "unix:///var/run/docker.sock"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
NS = 1_000_000_000

# Health checks every second, two misses to turn unhealthy: drills change within ~3 s while a
# slow exec on a busy CI machine does not flap a healthy container.
HEALTHCHECK = {"interval": NS, "timeout": 3 * NS, "retries": 2, "start_period": 0}
HEALTHY_TIMEOUT_S = 30.0
FILE_OK = "test -f /tmp/ok"

SERVICES: dict[str, dict[str, Any]] = {
    "web": {
        "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && touch /tmp/ok"
                    " && exec httpd -f -h /www -p 127.0.0.1:8080"],
        "health": f"{FILE_OK} && wget -q -O /dev/null http://127.0.0.1:8080/",
    },
    "worker": {"command": ["sh", "-c", "touch /tmp/ok; while :; do sleep 5; done"], "health": FILE_OK},
    "cache": {"command": ["sh", "-c", "touch /tmp/ok; while :; do sleep 5; done"], "health": FILE_OK},
}
CRASHER = "batch"
CRASH_COMMAND = ["sh", "-c", "sleep 1; exit 3"]
CRASH_RETRIES = 20
UNHEALTHY = "worker"


def engine_url() -> str:
    """The engine the sandbox would use: DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_URL


def engine_available(timeout: float = 2.0) -> str | None:
    """The engine's base URL when it answers a ping within `timeout`, else None."""
    url = engine_url()
    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return None
    try:
        import docker

        client = docker.DockerClient(base_url=url, timeout=timeout, version="auto")
        try:
            return url if client.ping() else None
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine here"
        return None


def busybox_binary() -> Path | None:
    return next((Path(p) for p in BUSYBOX_PATHS if Path(p).is_file()), None)


def busybox_tarball(binary: Path) -> bytes:
    """A root filesystem: /bin/busybox, a symlink per applet, /tmp and /www."""
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("www", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(binary), arcname="bin/busybox")
        for applet in sorted(set(applets) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def ensure_image(client: Any) -> str:
    """Make sure warroom/busybox:latest exists, importing it from local busybox if needed."""
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(IMAGE)
        return "present"
    binary = busybox_binary()
    if binary is None:
        raise SandboxError(
            f"image {IMAGE} is missing and there is no busybox at {' or '.join(BUSYBOX_PATHS)} "
            "to make it from (install busybox-static, or run .ci/dockerd.sh)"
        )
    client.api.import_image_from_data(busybox_tarball(binary), repository=IMAGE_REPO, tag=IMAGE_TAG)
    return f"imported from {binary}"


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"



class DockerContainers(Component):
    """A few healthy busybox containers and one that crash-loops on demand."""

    name = "docker"
    scenarios = ("container-crashloop",)
    engine_available = staticmethod(engine_available)

    def __init__(self, workdir: Path, base_url: str | None = None) -> None:
        super().__init__(workdir)
        self.base_url = base_url or engine_url()
        self.run_id = secrets.token_hex(3)
        self.prefix = f"wr-{self.run_id}-"
        self.client: Any = None

    def container_name(self, service: str) -> str:
        return self.prefix + service

    @property
    def container_names(self) -> list[str]:
        return [self.container_name(s) for s in (*SERVICES, CRASHER)]

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._connect)
        # The engine, not us, owns the containers: if we die, the guard removes them.
        self.guard.containers(self.base_url, f"{LABEL}={self.run_id}")
        await asyncio.to_thread(ensure_image, self.client)
        await asyncio.to_thread(self._sweep_orphans)
        await asyncio.gather(*(asyncio.to_thread(self._run_service, s) for s in SERVICES))
        await asyncio.to_thread(self._create_crasher)
        await self._wait_health(list(SERVICES), "healthy")

    def config(self) -> dict[str, Any]:
        return {"docker": {"name": "docker", "base_url": self.base_url, "containers": self.container_names}}

    async def inject(self, scenario: str) -> str:
        if scenario not in self.scenarios:
            return await super().inject(scenario)
        await asyncio.to_thread(self._get(CRASHER).start)
        await asyncio.to_thread(self._exec, UNHEALTHY, "rm -f /tmp/ok")
        await self._wait_health([UNHEALTHY], "unhealthy")
        return (
            f"{self.container_name(CRASHER)} crash-loops (exit 3 every second, up to {CRASH_RETRIES} restarts); "
            f"{self.container_name(UNHEALTHY)} is unhealthy"
        )

    async def heal(self, scenario: str) -> str:
        if scenario not in self.scenarios:
            return await super().heal(scenario)
        # A fresh, never-started container: its restart count and exit code start from zero.
        await asyncio.to_thread(self._remove, self.container_name(CRASHER))
        await asyncio.to_thread(self._create_crasher)
        await asyncio.to_thread(self._exec, UNHEALTHY, "touch /tmp/ok")
        await self._wait_health([UNHEALTHY], "healthy")
        return f"{self.container_name(CRASHER)} recreated (not running); {self.container_name(UNHEALTHY)} healthy again"

    async def stop(self) -> None:
        if self.client is None:
            return
        await asyncio.to_thread(self._remove_all)
        client, self.client = self.client, None
        await asyncio.to_thread(client.close)

    # --- engine calls (run in threads: the SDK is synchronous) --------------------------------

    def _connect(self) -> None:
        import docker

        try:
            self.client = docker.DockerClient(base_url=self.base_url, timeout=30, version="auto")
            self.client.ping()
        except Exception as exc:  # noqa: BLE001 - one operator message instead of a traceback
            self.client = None
            raise SandboxError(f"docker: engine not reachable at {self.base_url} ({exc})") from None

    def _labels(self) -> dict[str, str]:
        return {LABEL: self.run_id, OWNER_LABEL: _owner()}

    def _run_service(self, service: str) -> None:
        spec = SERVICES[service]
        self.client.containers.run(
            IMAGE,
            spec["command"],
            name=self.container_name(service),
            labels=self._labels(),
            network_mode="none",
            detach=True,
            mem_limit="64m",
            healthcheck={"test": ["CMD-SHELL", spec["health"]], **HEALTHCHECK},
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        )

    def _create_crasher(self) -> None:
        self.client.containers.create(
            IMAGE,
            CRASH_COMMAND,
            name=self.container_name(CRASHER),
            labels=self._labels(),
            network_mode="none",
            mem_limit="64m",
            restart_policy={"Name": "on-failure", "MaximumRetryCount": CRASH_RETRIES},
        )

    def _get(self, service: str) -> Any:
        return self.client.containers.get(self.container_name(service))

    def _exec(self, service: str, command: str) -> None:
        result = self._get(service).exec_run(["sh", "-c", command])
        if result.exit_code != 0:
            raise SandboxError(f"docker: `{command}` in {self.container_name(service)} exited {result.exit_code}")

    def _remove(self, name: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(name, force=True)

    def _remove_all(self) -> None:
        found = self.client.api.containers(all=True, filters={"label": f"{LABEL}={self.run_id}"})
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._remove, [c["Id"] for c in found]))

    def _sweep_orphans(self) -> None:
        """Remove containers left by a sandbox on this host whose process died without stop()."""
        host = socket.gethostname()
        for info in self.client.api.containers(all=True, filters={"label": LABEL}):
            owner = (info.get("Labels") or {}).get(OWNER_LABEL, "")
            owner_host, _, pid = owner.rpartition(":")
            if owner_host == host and pid.isdigit() and not pid_alive(int(pid)):
                self._remove(info["Id"])

    def _health(self, service: str) -> str | None:
        state = self.client.api.inspect_container(self.container_name(service))["State"]
        return (state.get("Health") or {}).get("Status") or state.get("Status")

    async def _wait_health(self, services: list[str], wanted: str) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while True:
            states = {s: await asyncio.to_thread(self._health, s) for s in services}
            if all(v == wanted for v in states.values()):
                return
            if time.monotonic() > deadline:
                seen = ", ".join(f"{self.container_name(s)} {v}" for s, v in states.items())
                raise SandboxError(f"docker: containers not {wanted} after {HEALTHY_TIMEOUT_S:g}s: {seen}")
            await asyncio.sleep(0.2)
