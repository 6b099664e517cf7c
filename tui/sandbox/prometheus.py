"""The sandbox's Prometheus, Alertmanager and exporters (Debian packages), on loopback only.

When `prometheus`, `prometheus-alertmanager` and the postgres, redis and blackbox exporters are
installed, the sandbox runs them after its other parts: the exporters read the sandbox's
PostgreSQL and Redis with the read credentials warroom itself uses, blackbox probes its HTTP
services, Prometheus scrapes all of them every second and evaluates `prometheus_rules.yml`
(runbook_url annotations naming bundled runbooks), and sends to Alertmanager. Without them
the sandbox says so in one line and runs as before.

Every program listens on 127.0.0.1 only: their defaults are 0.0.0.0 (and Alertmanager's
cluster port 9094), so every listen address is passed explicitly and clustering is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tui.sandbox.base import LOOPBACK, Component, Guard, SandboxError, dies_with_owner, free_port

RULES = Path(__file__).with_name("prometheus_rules.yml")
# Debian's program names first; upstream tarballs name Alertmanager and the exporters shorter.
BINARIES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "postgres_exporter": ("prometheus-postgres-exporter", "postgres_exporter"),
    "redis_exporter": ("prometheus-redis-exporter", "redis_exporter"),
    "blackbox_exporter": ("prometheus-blackbox-exporter", "blackbox_exporter"),
}
PACKAGES = ("prometheus", "prometheus-alertmanager", "prometheus-postgres-exporter",
            "prometheus-redis-exporter", "prometheus-blackbox-exporter")
BLACKBOX_KEYS = {"name", "url", "latency_warn_ms", "latency_fail_ms", "json_field", "json_equals", "group"}
INTERVAL = "1s"  # scrape and rule evaluation: a drill's alert fires within seconds
READY_TIMEOUT_S = 20.0


def binaries() -> tuple[dict[str, str], list[str]]:
    """({program: path} of those found, [programs missing])."""
    found: dict[str, str] = {}
    for program, names in BINARIES.items():
        path = next((p for p in map(shutil.which, names) if p), None)
        if path:
            found[program] = path
    return found, [p for p in BINARIES if p not in found]


def missing_line(missing: list[str]) -> str:
    return (f"prometheus: not installed ({', '.join(missing)} missing; apt-get install {' '.join(PACKAGES)}); "
            "the sandbox runs without Prometheus and Alertmanager")


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


class PrometheusSandbox(Component):
    """Exporters, Prometheus and Alertmanager watching the other components (`watch` first)."""

    name = "prometheus"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.fragments: list[dict[str, Any]] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def watch(self, fragments: list[dict[str, Any]]) -> None:
        """The other components' config fragments: what to export and scrape."""
        self.fragments = fragments

    def _targets(self, kind: str) -> list[dict[str, Any]]:
        return [t for f in self.fragments for t in f.get(kind, [])]

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['prometheus']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['alertmanager']}"

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir), **(env or {})},
                start_new_session=True,  # Ctrl-C goes to the sandbox, which stops us in order
                preexec_fn=dies_with_owner(signal.SIGTERM),
            )
        finally:
            log.close()
        self.procs[name] = proc
        self.guard.process(proc.pid, signal.SIGTERM)

    def _listen(self, name: str) -> str:
        self.ports[name] = free_port()
        return f"{LOOPBACK}:{self.ports[name]}"

    def _exporters(self, found: dict[str, str]) -> list[dict[str, Any]]:
        """Start one exporter per PostgreSQL / Redis target and blackbox; their scrape jobs."""
        static: dict[str, list[dict[str, Any]]] = {"postgres": [], "redis": []}
        for target in self._targets("postgres"):
            name = f"postgres_exporter-{target['name']}"
            # lib/pq requires TLS unless told otherwise; the sandbox's servers have none.
            dsn = target["dsn"] + ("&" if "?" in target["dsn"] else "?") + "sslmode=disable"
            address = self._listen(name)
            self._spawn(name, [found["postgres_exporter"], f"--web.listen-address={address}"], {"DATA_SOURCE_NAME": dsn})
            static["postgres"].append({"targets": [address], "labels": {"instance": target["name"]}})
        for target in self._targets("redis"):
            name = f"redis_exporter-{target['name']}"
            parts = urlsplit(target["url"])
            address = self._listen(name)
            # Credentials through the environment, not argv (ps shows argv to every user); the
            # host:port form: Debian 12's build refuses redis:// addresses.
            env = {"REDIS_USER": unquote(parts.username or ""), "REDIS_PASSWORD": unquote(parts.password or "")}
            self._spawn(name, [found["redis_exporter"], f"-web.listen-address={address}",
                               f"-redis.addr={parts.hostname}:{parts.port or 6379}"], env)
            static["redis"].append({"targets": [address], "labels": {"instance": target["name"]}})
        # One job per exporter kind, `instance` = the warroom target's name: an alert names it.
        jobs: list[dict[str, Any]] = [{"job_name": job, "static_configs": c} for job, c in static.items() if c]
        # Blackbox GETs a URL: targets with their own method, headers or grading (CORS, a token,
        # /metrics) are warroom's checks, not availability probes.
        http = [t for t in self._targets("http") if set(t) <= BLACKBOX_KEYS]
        # The sandbox's services serve /metrics beside /health: one `app` job scrapes them.
        apps = [t for t in self._targets("http") if t["url"].endswith("/health")]
        if apps:
            jobs.append({"job_name": "app", "static_configs": [
                {"targets": [urlsplit(t["url"]).netloc], "labels": {"instance": t["name"]}} for t in apps]})
        if http:
            config = self.workdir / "blackbox.yml"
            config.write_text(_yaml({"modules": {"http_2xx": {"prober": "http", "timeout": "2.5s",
                                                             "http": {"preferred_ip_protocol": "ip4"}}}}))
            address = self._listen("blackbox_exporter")
            self._spawn("blackbox_exporter", [found["blackbox_exporter"], f"--config.file={config}", f"--web.listen-address={address}"])
            jobs.append({
                # Its own interval and timeout: a service answering in 1.3 s is slow, not down
                # (under the global 1 s scrape timeout its probe would fail and fire EndpointDown).
                "job_name": "blackbox", "metrics_path": "/probe", "params": {"module": ["http_2xx"]},
                "scrape_interval": "3s", "scrape_timeout": "3s",
                "static_configs": [{"targets": [t["url"]], "labels": {"instance": t["name"]}} for t in http],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"target_label": "__address__", "replacement": address},
                ],
            })
        return jobs

    def _alertmanager(self, path: str) -> None:
        config = self.workdir / "alertmanager.yml"
        # A receiver with a name (a bare `receiver: null` parses as YAML null) and no integration:
        # the sandbox notifies nobody; warroom reads the alerts from the API.
        config.write_text(_yaml({
            "route": {"receiver": "warroom", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "warroom"}],
        }))
        address = self._listen("alertmanager")
        self._spawn("alertmanager", [path, f"--config.file={config}", f"--storage.path={self.workdir / 'am-data'}",
                                     f"--web.listen-address={address}", "--cluster.listen-address="])

    def _prometheus(self, path: str, jobs: list[dict[str, Any]]) -> None:
        address = self._listen("prometheus")
        config = self.workdir / "prometheus.yml"
        jobs = [{"job_name": "prometheus", "static_configs": [{"targets": [address]}]}, *jobs]
        config.write_text(_yaml({
            "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(RULES)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{self.ports['alertmanager']}"]}]}]},
            "scrape_configs": jobs,
        }))
        self._spawn("prometheus", [path, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                                   f"--web.listen-address={address}", "--storage.tsdb.retention.time=1h"])

    async def _ready(self, name: str, url: str) -> None:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(trust_env=False) as client:
            while time.monotonic() < deadline:
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise SandboxError(f"{name} exited at start ({self._log_tail(name)})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url, timeout=1.0)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise SandboxError(f"{name} did not answer {url} within {READY_TIMEOUT_S:g}s ({self._log_tail(name)})")

    def _log_tail(self, name: str) -> str:
        with contextlib.suppress(OSError):
            lines = (self.workdir / f"{name}.log").read_text(errors="replace").strip().splitlines()
            if not lines:
                return "no output"
            # Go programs log `... msg="..." err="the cause"`: the cause is what the operator needs.
            last = lines[-1]
            return (last[last.index("err="):] if "err=" in last else last)[:300]
        return "no log"

    async def start(self) -> None:
        found, missing = binaries()
        if missing:
            raise SandboxError(missing_line(missing))
        jobs = self._exporters(found)
        self._alertmanager(found["alertmanager"])
        self._prometheus(found["prometheus"], jobs)
        checks = [self._ready("prometheus", f"{self.prometheus_url}/-/ready"),
                  self._ready("alertmanager", f"{self.alertmanager_url}/-/ready")]
        checks += [self._ready(n, f"http://{LOOPBACK}:{p}/") for n, p in self.ports.items() if "exporter" in n]
        await asyncio.gather(*checks)

    def config(self) -> dict[str, Any]:
        return {
            "prometheus": [{"name": "prom", "url": self.prometheus_url}],
            "alertmanager": [{"name": "alerts", "url": self.alertmanager_url}],
        }

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.to_thread(proc.wait, 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 5)
        self.procs = {}


async def watch(directory: Path, guard: Guard, fragments: list[dict[str, Any]]) -> PrometheusSandbox | None:
    """Start Prometheus and co. watching `fragments`; None (and one line) when not installed."""
    _found, missing = binaries()
    if missing:
        print(missing_line(missing), flush=True)
        return None
    component = PrometheusSandbox(directory)
    component.guard = guard
    component.watch(fragments)
    try:
        await component.start()
    except BaseException:
        await component.stop()
        raise
    return component
