"""`warroom sandbox up`: start every component, write warroom.toml, serve inject/heal, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tui.sandbox.base import DEMO_PREFIX, Component, Guard, SandboxError, warnings_to
from tui.sandbox.scenarios import SCENARIOS, owner, unknown
from tui.sandbox.tomlwrite import dumps

ENV_NAME = "sandbox"
COMPONENT_MODULES = ("postgres", "redis", "http", "dns", "docker")


def _component_class(name: str) -> type[Component]:
    module = importlib.import_module(f"tui.sandbox.{name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Component) and value is not Component and value.name == name:
            return value
    raise SandboxError(f"tui.sandbox.{name} defines no Component named {name!r}")


def _docker_url() -> str | None:
    module = importlib.import_module("tui.sandbox.docker")
    return module.engine_available()


def merge_config(fragments: list[dict[str, Any]], refresh_s: float) -> dict[str, Any]:
    env: dict[str, Any] = {
        "banner": "SANDBOX",
        "color": "green",
        "refresh": refresh_s,
        "timeout": 2.0,
    }
    thresholds: dict[str, dict[str, float]] = {}
    for fragment in fragments:
        for key, value in fragment.items():
            if key == "thresholds":
                for probe, values in value.items():
                    thresholds.setdefault(probe, {}).update(values)
            elif isinstance(value, list):
                env.setdefault(key, []).extend(value)
            else:
                env[key] = value
    if thresholds:
        env["thresholds"] = thresholds
    return {"environments": {ENV_NAME: env}}


class Sandbox:
    """The running sandbox: its components, their scenarios and the control socket."""

    def __init__(self, directory: Path, *, docker: bool = True, guard: Guard | None = None, prometheus: bool = True) -> None:
        self.dir = directory.resolve()
        self.prometheus = prometheus
        self.dir.mkdir(parents=True, exist_ok=True)
        self.components: dict[str, Component] = {}
        self.docker = docker
        self.guard = guard or Guard()
        self.lock = asyncio.Lock()
        self.server: asyncio.AbstractServer | None = None

    @property
    def config_path(self) -> Path:
        return self.dir / "warroom.toml"

    @property
    def control_path(self) -> Path:
        return self.dir / "control.sock"

    async def start(self) -> None:
        names = [n for n in COMPONENT_MODULES if n != "docker"]
        if self.docker and _docker_url():
            names.append("docker")
        components = [_component_class(n)(self.dir) for n in names]
        for component in components:
            component.guard = self.guard
        results = await asyncio.gather(*(c.start() for c in components), return_exceptions=True)
        started = [c for c, r in zip(components, results, strict=True) if not isinstance(r, BaseException)]
        self.components = {c.name: c for c in started}
        failures = [(c, r) for c, r in zip(components, results, strict=True) if isinstance(r, BaseException)]
        if failures:
            # A half-started component may own processes too: stop everything.
            self.components = {c.name: c for c in components}
            await self.stop()
            lines = [f"{c.name}: {r}" for c, r in failures]
            raise SandboxError("could not start the sandbox:\n  " + "\n  ".join(lines))
        fragments = [c.config() for c in started]
        if self.prometheus:  # after the others: it watches what they started
            from tui.sandbox.prometheus import watch

            try:
                watcher = await watch(self.dir, self.guard, fragments)
            except BaseException:
                await self.stop()
                raise
            if watcher is not None:
                self.components[watcher.name] = watcher
                fragments.append(watcher.config())
        self.config_path.write_text(
            "# Written by `warroom sandbox up`; describes the running local sandbox.\n"
            + dumps(merge_config(fragments, refresh_s=1.0)),
            encoding="utf-8",
        )
        self._write_state()

    def _write_state(self) -> None:
        pids: dict[str, int] = {}
        dsns: dict[str, dict[str, str]] = {}
        for component in self.components.values():
            pids.update(component.pids())
            for kind, urls in component.dsns().items():
                dsns.setdefault(kind, {}).update(urls)
        state = {
            "pid": os.getpid(),
            "pids": pids,
            "dsns": dsns,  # admin credentials: sandbox.json only, never warroom.toml
            "control": str(self.control_path),
            "config": str(self.config_path),
            "components": list(self.components),
            "active": sorted(self.active()),
        }
        (self.dir / "sandbox.json").write_text(json.dumps(state, indent=2), encoding="utf-8")

    def active(self) -> set[str]:
        return {s for c in self.components.values() for s in c.active}

    async def change(self, op: str, scenario: str) -> str:
        if scenario not in SCENARIOS:
            raise SandboxError(unknown(scenario))
        component = self.components.get(owner(scenario))
        if component is None:
            raise SandboxError(f"{scenario} needs the {owner(scenario)} component, which is not running here")
        async with self.lock:
            if op == "inject":
                message = await component.inject(scenario)
                component.active.add(scenario)
            else:
                message = await component.heal(scenario)
                component.active.discard(scenario)
            self._write_state()
        return message

    async def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        self.server = await asyncio.start_unix_server(self._handle, path=str(self.control_path))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline() or b"{}")
            op = request.get("op")
            if op in ("inject", "heal"):
                reply = {"ok": True, "message": await self.change(op, str(request.get("scenario")))}
            elif op == "status":
                reply = {"ok": True, "message": "running", "components": list(self.components), "active": sorted(self.active())}
            else:
                reply = {"ok": False, "message": f"unknown operation {op!r}"}
        except SandboxError as exc:
            reply = {"ok": False, "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - report to the client, keep the sandbox up
            reply = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
        reply["active"] = sorted(self.active())
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for component in reversed(list(self.components.values())):
            try:
                await asyncio.wait_for(component.stop(), timeout=20)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"warroom sandbox: stopping {component.name}: {exc}", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "sandbox.json").unlink()


def already_running(directory: Path) -> bool:
    """Whether a sandbox answers on this folder's control socket (a stale socket does not)."""
    from tui.sandbox.control import ControlError, request

    try:
        return bool(request(directory, {"op": "status"}, timeout=2).get("ok"))
    except (ControlError, OSError):
        return False


def _output_gone() -> None:
    """Whoever read our output is gone (the terminal hung up, `warroom demo` died): what we still
    print while stopping must not fail on a dead terminal or a pipe nobody reads."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def _stop_when_closed(stop: asyncio.Event) -> None:
    """Stop when standard input closes: `warroom demo` holds the other end, so we end with it,
    however it ends (SIGKILL included)."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            _output_gone()
            stop.set()

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError):
        raise SandboxError("--stop-on-eof needs standard input to be a pipe") from None


async def run(
    directory: Path,
    scenarios: list[str],
    *,
    docker: bool,
    ready: asyncio.Event | None = None,
    stop_on_eof: bool = False,
    temporary: bool = False,
    prometheus: bool = True,
) -> int:
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise SandboxError(unknown(scenario))
    directory = directory.resolve()
    if temporary and not directory.name.startswith(DEMO_PREFIX):  # it is removed at the end
        raise SandboxError(f"--temporary is only for the folders of warroom demo ({DEMO_PREFIX}*), not {directory}")
    if already_running(directory):
        raise SandboxError(f"a sandbox is already running in {directory} (stop it first, or use another --dir)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # under nohup, a hang-up is not for us
        # The SSH link dropped: stop as on SIGTERM, without writing to the terminal that went away.
        loop.add_signal_handler(signal.SIGHUP, lambda: (_output_gone(), stop.set()))
    if stop_on_eof:
        _stop_when_closed(stop)
    directory.mkdir(parents=True, exist_ok=True)
    # First of all, so that whatever starts is covered even if we are killed while starting.
    guard = Guard.spawn(log=directory / "guard.log")
    for name in ("control.sock", "sandbox.json"):
        guard.path(directory / name)
    if temporary:
        guard.path(directory)
    sandbox = Sandbox(directory, docker=docker, guard=guard, prometheus=prometheus)
    started = time.perf_counter()
    try:
        await sandbox.start()
        await sandbox.serve()
        for scenario in scenarios:
            print(f"injected {scenario}: {await sandbox.change('inject', scenario)}", flush=True)
        elapsed = time.perf_counter() - started
        print(f"components: {', '.join(sandbox.components)} (started in {elapsed:.1f}s)", flush=True)
        if (directory / "sandbox.env").exists():  # the api tokens the config's headers_env names
            print(f"tokens: . {directory / 'sandbox.env'}  (in the shell that loads the config)", flush=True)
        print(f"ready: {sandbox.config_path}", flush=True)
        if ready:
            ready.set()
        await stop.wait()
    finally:
        await sandbox.stop()
        await asyncio.to_thread(guard.close)
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    print("sandbox stopped", flush=True)
    return 0


def main(args: Any) -> int:
    from tui.cli import UsageError

    warnings_to(Path(args.dir) / "warnings.log")
    stop_on_eof, temporary = getattr(args, "stop_on_eof", False), getattr(args, "temporary", False)
    try:
        prometheus = not getattr(args, "no_prometheus", False)
        return asyncio.run(run(args.dir, args.scenario, docker=not args.no_docker, stop_on_eof=stop_on_eof, temporary=temporary,
                               prometheus=prometheus))
    except SandboxError as exc:
        if "unknown scenario" in str(exc):
            raise UsageError(str(exc)) from None
        print(f"warroom sandbox: {exc}", file=sys.stderr)
        return 1
