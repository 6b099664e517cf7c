"""Fleet-scale figures beside the budgets of issue 11 (a script, not a pytest test).

    python tests/perf/bench_scale.py                 # start a sandbox, both fleets, 30 s each
    python tests/perf/bench_scale.py --minutes 5     # both fleets for the issue's 5 minutes
    python tests/perf/bench_scale.py --long          # the 1000-endpoint fleet for 5 minutes
    python tests/perf/bench_scale.py --profile F     # cProfile of the cockpit's loop to F.300, F.1000
    python tests/perf/bench_scale.py --config FILE   # PostgreSQL/Redis of a running sandbox
    python tests/perf/bench_scale.py --probe-only    # only the HTTP probe path, in this process

Healthy targets, loopback only: HTTP servers in a child process (30 ports x 10 paths for 300
endpoints, 100 x 10 for 1000: one pool per origin is what matters), the sandbox's PostgreSQL
primary and replica repeated under 10 names, its Redis under 5. The cockpit runs as a real
process on a 120x40 pseudo-terminal (bench_cockpit.Terminal), with two additions in that
process: every reading's status is tallied (for the "not ok" figure) and, for the memory
figure, each series is filled to its full history at its first reading. Everything stops by
itself: the servers with this script's standard input, the sandbox on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cockpit import ROOT, SIZE, Terminal, compile_bytecode, row, start_sandbox  # noqa: E402

PATHS_PER_PORT = 10
SERVER_LIFETIME_S = 1800  # the servers stop by themselves at the latest after this
# The HTTP servers: one process, N ports, PATHS_PER_PORT paths each; ends with its stdin.
SERVERS = (
    "import asyncio, json, sys\nsys.path.insert(0, {root!r})\nfrom tui.sandbox.http_server import Service\n"
    "async def main():\n"
    "    services = [Service(f's{{i}}', {{f'/svc/{{j}}': {{'status': 'ok', 'path': j}} for j in range({paths})}}) for i in range({ports})]\n"
    "    for s in services:\n        await s.listen()\n"
    "    print(json.dumps([s.port for s in services]), flush=True)\n"
    "    loop = asyncio.get_running_loop()\n"
    "    try:\n        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), {lifetime})\n"
    "    except TimeoutError:\n        pass\n"
    "    import os\n    os._exit(0)\n"
    "asyncio.run(main())\n"
)
# The cockpit as `python -m tui --config FILE --refresh S` runs it, plus the tally and prefill.
COCKPIT = (
    "import json, os, random, sys, time\nsys.path.insert(0, {root!r})\n"
    "from dataclasses import replace\n"
    "from tui import scheduler\nfrom widgets import store as store_module\n"
    "tally_path, prefill, refresh = os.environ['BENCH_TALLY'], os.environ.get('BENCH_PREFILL') == '1', {refresh}\n"
    "tally = {{'readings': {{}}, 'not_ok': {{}}, 'examples': []}}\n"
    "last = [0.0]\n"
    "deliver = scheduler.LiveSource._deliver\n"
    "def counting(self, origin, results, *, first):\n"
    "    for r in results:\n"
    "        tally['readings'][r.kind] = tally['readings'].get(r.kind, 0) + 1\n"
    "        if r.status != 'ok':\n"
    "            tally['not_ok'][r.kind] = tally['not_ok'].get(r.kind, 0) + 1\n"
    "            if len(tally['examples']) < 12:\n                tally['examples'].append(f'{{r.status}}: {{r.summary}}')\n"
    "    now = time.monotonic()\n"
    "    if now - last[0] > 1.0:\n"
    "        last[0] = now\n"
    "        with open(tally_path + '.tmp', 'w') as f:\n            json.dump(tally, f)\n"
    "        os.replace(tally_path + '.tmp', tally_path)\n"
    "    return deliver(self, origin, results, first=first)\n"
    "scheduler.LiveSource._deliver = counting\n"
    "if prefill:\n"
    "    add, seen = store_module.ResultStore.add, set()\n"
    "    def full(self, results):\n"
    "        results = list(results)\n"
    "        fresh = [r for r in results if r.key not in seen]\n"
    "        seen.update(r.key for r in fresh)\n"
    "        for back in range(self.history_size - 1, 0, -1):\n"
    "            add(self, [replace(r, timestamp=r.timestamp - back * refresh, value=r.value * random.uniform(0.8, 1.2) if isinstance(r.value, float) else r.value) for r in fresh])\n"
    "        return add(self, results)\n"
    "    store_module.ResultStore.add = full\n"
    "profile_path = os.environ.get('BENCH_PROFILE')\n"
    "if profile_path:\n"
    "    # The event loop's thread only, from the first reading for BENCH_PROFILE_S seconds.\n"
    "    import cProfile\n"
    "    profiler, until = cProfile.Profile(), [None]\n"
    "    counted = scheduler.LiveSource._deliver\n"
    "    def profiled(self, origin, results, *, first):\n"
    "        if until[0] is None:\n"
    "            until[0] = time.monotonic() + float(os.environ['BENCH_PROFILE_S'])\n"
    "            profiler.enable()\n"
    "        elif until[0] and time.monotonic() > until[0]:\n"
    "            until[0] = 0.0\n"
    "            profiler.disable()\n"
    "            profiler.dump_stats(profile_path)\n"
    "        return counted(self, origin, results, first=first)\n"
    "    scheduler.LiveSource._deliver = profiled\n"
    "from tui.cli import main\nsys.exit(main(['--config', {config!r}, '--refresh', str(refresh)]))\n"
)


# --- the targets ------------------------------------------------------------------------------


class Servers:
    """`ports` loopback HTTP servers with PATHS_PER_PORT healthy paths each, in a child process."""

    def __init__(self, ports: int) -> None:
        code = SERVERS.format(root=str(ROOT), paths=PATHS_PER_PORT, ports=ports, lifetime=SERVER_LIFETIME_S)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the HTTP servers did not start")
        self.ports: list[int] = json.loads(line)

    def urls(self, count: int) -> list[str]:
        return [f"http://127.0.0.1:{port}/svc/{j}" for port in self.ports for j in range(PATHS_PER_PORT)][:count]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _quoted(value: Any) -> str:
    return json.dumps(value)  # a JSON string or list is a valid TOML one


def write_config(path: Path, urls: list[str], sandbox: Path | None, *, postgres: int, redis: int, refresh: float) -> Path:
    """warroom.toml: the endpoints, and the sandbox's PostgreSQL and Redis repeated under new names."""
    lines = ["[environments.scale]", f"refresh = {refresh}", "timeout = 2.0", ""]
    if sandbox is not None and (postgres or redis):
        env = next(iter(tomllib.loads(sandbox.read_text())["environments"].values()))
        bases = env.get("postgres", [])
        for i in range(postgres if bases else 0):
            base = bases[i % len(bases)]
            lines += ["[[environments.scale.postgres]]", f'name = "pg-{base["name"]}-{i // len(bases) + 1}"',
                      f"dsn = {_quoted(base['dsn'])}", f"role = {_quoted(base.get('role', 'primary'))}", ""]
        for i in range(redis if env.get("redis") else 0):
            base = env["redis"][0]
            lines += ["[[environments.scale.redis]]", f'name = "redis-{i + 1}"', f"url = {_quoted(base['url'])}"]
            lines += [f"queues = {_quoted(base['queues'])}"] if "queues" in base else []
            lines += [""]
        for kind in ("replication", "locks", "long_queries", "idle_in_transaction", "ping", "queues", "memory"):
            if kind in env.get("thresholds", {}):
                lines += [f"[environments.scale.thresholds.{kind}]"]
                lines += [f"{key} = {value}" for key, value in env["thresholds"][kind].items()] + [""]
    for i, url in enumerate(urls):
        lines += ["[[environments.scale.http]]", f'name = "web-{i + 1:04d}"', f"url = {_quoted(url)}", ""]
    path.write_text("\n".join(lines))
    return path


# --- the cockpit on a pty ---------------------------------------------------------------------


def run_cockpit(config: Path, refresh: float, seconds: float, *, presses: int, prefill: bool, profile: Path | None = None) -> dict[str, Any]:
    """CPU, bytes/s and memory over `seconds` of steady state (no keys), then `presses` of `?`
    at random moments of the refresh cycle; the tally of every reading since the start."""
    import psutil

    tally_path = config.with_suffix(".tally.json")
    tally_path.unlink(missing_ok=True)
    code = COCKPIT.format(root=str(ROOT), refresh=refresh, config=str(config))
    env = {"BENCH_TALLY": str(tally_path), "BENCH_PREFILL": "1" if prefill else "0"}
    if profile is not None:
        # The steady window and most of the key presses after it (the profile is dumped at
        # the first reading past its end, before the cockpit is stopped).
        env |= {"BENCH_PROFILE": str(profile), "BENCH_PROFILE_S": str(max(5.0, 2 * refresh) + seconds + presses * refresh * 0.5)}
    term = Terminal([sys.executable, "-c", code], env=env)
    try:
        if term.wait_for(rb"last \d\d:\d\d:\d\d", timeout=30) is None:
            raise SystemExit("the cockpit showed no live data within 30 s")
        time.sleep(max(5.0, 2 * refresh))  # every target's first round, imports, first layout
        proc = psutil.Process(term.process.pid)
        cpu0, t0 = proc.cpu_times(), time.perf_counter()
        time.sleep(seconds)
        cpu1, t1 = proc.cpu_times(), time.perf_counter()
        rss = proc.memory_info().rss
        keys: list[float] = []
        for _ in range(presses):
            time.sleep(random.uniform(0.2, refresh))
            elapsed = term.send_and_wait(b"?", rb"Keys \(Escape closes\)")
            keys.append(elapsed if elapsed is not None else float("inf"))
            term.send_and_wait(b"\x1b", rb"Services")
        behind = b"behind:" in term.text
        written = term.bytes_between(t0, t1)
        time.sleep(1.5)  # the tally's last write
    finally:
        term.close()
    tally = json.loads(tally_path.read_text()) if tally_path.exists() else {"readings": {}, "not_ok": {}, "examples": []}
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    return {"cpu": cpu, "bytes_per_s": written / (t1 - t0), "rss_mb": rss / 2**20, "keys": keys, "tally": tally, "behind": behind}


# --- the probe path alone, in this process ----------------------------------------------------


async def _probe_rounds(urls: list[str], refresh: float, rounds: int) -> tuple[float, int, int]:
    """CPU ms per HTTP probe with the cockpit's sessions and spread starts, no UI."""
    from probes import http
    from probes.config import HttpTarget
    from probes.thresholds import Thresholds

    targets = [HttpTarget(f"web-{i}", url) for i, url in enumerate(urls)]
    sessions = [http.Session(t) for t in targets]
    thresholds = Thresholds()
    not_ok = 0

    async def one(target: HttpTarget, session: http.Session, delay: float) -> int:
        await asyncio.sleep(delay)
        [result] = await http.collect(target, thresholds, timeout=2.0, session=session)
        return result.status != "ok"

    async def round_() -> int:
        # As the scheduler does: 20 at a time over the first half of the interval.
        slots = max(1, -(-len(targets) // 20))
        jobs = [one(t, s, (i // 20) / slots * 0.5 * refresh) for i, (t, s) in enumerate(zip(targets, sessions, strict=True))]
        started = time.monotonic()
        bad = sum(await asyncio.gather(*jobs))
        await asyncio.sleep(max(0.0, refresh - (time.monotonic() - started)))
        return bad

    await round_()  # connections opened, imports done
    cpu0 = time.process_time()
    for _ in range(rounds):
        not_ok += await round_()
    cpu = time.process_time() - cpu0
    for session in sessions:
        await session.aclose()
    return cpu * 1000 / (rounds * len(targets)), rounds * len(targets), not_ok


def probe_path(urls: list[str], refresh: float, rounds: int, profile: Path | None) -> tuple[float, int, int]:
    if profile is None:
        return asyncio.run(_probe_rounds(urls, refresh, rounds))
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    figures = profiler.runcall(asyncio.run, _probe_rounds(urls, refresh, rounds))
    profiler.dump_stats(profile)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return figures


# --- report -----------------------------------------------------------------------------------


def report_cockpit(title: str, figures: dict[str, Any], *, cpu_budget: float, memory: bool, http_count: int) -> None:
    print(f"\n{title}")
    row("cockpit CPU (one core)", f"{figures['cpu']:.1%}", f"<= {cpu_budget:.0%}", figures["cpu"] <= cpu_budget)
    row("output to the terminal", f"{figures['bytes_per_s'] / 1024:.2f} KB/s", "<= 5 KB/s", figures["bytes_per_s"] <= 5 * 1024)
    worst = max(figures["keys"], default=float("nan"))
    row("key response, `?` (worst)", f"{worst * 1000:.0f} ms", "< 100 ms", worst < 0.1)
    if figures["keys"]:
        print(f"  ({len(figures['keys'])} presses at random moments of the refresh, median {statistics.median(figures['keys']) * 1000:.0f} ms)")
    row("resident memory" + (" (full history)" if memory else ""), f"{figures['rss_mb']:.0f} MB", "<= 200 MB" if memory else "--", figures["rss_mb"] <= 200 if memory else None)
    tally = figures["tally"]
    http_bad = tally["not_ok"].get("http", 0)
    row("HTTP readings not ok (healthy)", f"{http_bad} of {tally['readings'].get('http', 0)}", "0", http_bad == 0)
    for kind in sorted(set(tally["readings"]) - {"http"}):
        print(f"  ({kind}: {tally['not_ok'].get(kind, 0)} of {tally['readings'][kind]} readings not ok: the sandbox's own state, no budget)")
    for example in tally["examples"][:6]:
        print(f"  e.g. {example[:150]}")
    print(f"  (header said 'behind': {'yes' if figures['behind'] else 'no'}; {http_count} HTTP endpoints)")


def summary(results: dict[str, dict[str, Any]]) -> None:
    """Every figure of issue 11's budget table, beside its budget, in one place."""
    print("\nissue 11 budgets")
    small, large = results.get("300"), results.get("1000")
    if small is not None:
        row("300 HTTP + 10 PG + 5 Redis @1 s: CPU", f"{small['cpu']:.1%}", "<= 25 %", small["cpu"] <= 0.25)
    if large is not None:
        row("1000 HTTP @5 s: CPU", f"{large['cpu']:.1%}", "<= 25 %", large["cpu"] <= 0.25)
    for name, figures in results.items():
        bad, total = figures["tally"]["not_ok"].get("http", 0), figures["tally"]["readings"].get("http", 0)
        row(f"{name} HTTP: readings not ok (healthy)", f"{bad} of {total}", "0", bad == 0)
    if small is not None:
        row("output, 120x40, 300 targets", f"{small['bytes_per_s'] / 1024:.2f} KB/s", "<= 5 KB/s", small["bytes_per_s"] <= 5 * 1024)
    keys = [k for figures in results.values() for k in figures["keys"]]
    if keys:
        row("key response throughout (worst)", f"{max(keys) * 1000:.0f} ms", "< 100 ms", max(keys) < 0.1)
    if large is not None and large.get("full_history"):
        row("memory, 1000 targets, full history", f"{large['rss_mb']:.0f} MB", "<= 200 MB", large["rss_mb"] <= 200)
    print("  (CPU: the cockpit process's CPU time / wall time; other work on this machine slows it, never lowers it)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="warroom.toml of a running sandbox (skips starting one)")
    parser.add_argument("--minutes", type=float, default=0.5, help="steady-state window per fleet (default 0.5; the issue's budget says 5)")
    parser.add_argument("--long", action="store_true", help="the 1000-endpoint fleet for 5 minutes")
    parser.add_argument("--presses", type=int, default=15, help="`?` presses per fleet after the window")
    parser.add_argument("--probe-only", action="store_true", help="only the HTTP probe path, in this process")
    parser.add_argument("--profile", type=Path, help="cProfile stats of the cockpit's event loop (or of the probe path) to FILE[.fleet]")
    parser.add_argument("--fleet", choices=("300", "1000", "both"), default="both")
    parser.add_argument("--no-prefill", action="store_true", help="1000 fleet: history grows as it would (memory not at its full figure)")
    args = parser.parse_args()
    seconds = args.minutes * 60
    compile_bytecode()
    servers = Servers(100)
    sandbox = None
    workdir = Path(tempfile.mkdtemp(prefix="warroom-scale-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        if args.probe_only:
            rounds = max(3, int(seconds))
            ms, probes, bad = probe_path(servers.urls(300), 1.0, rounds, args.profile)
            print("\nHTTP probe path alone (this process, 300 endpoints on 30 ports, refresh 1 s)")
            row("CPU per HTTP probe", f"{ms:.2f} ms", "<= 0.83 ms", ms <= 250 / 300)
            print(f"  ({probes} probes, {bad} not ok; 0.83 ms x 300/s is 25 % of a core, UI left out)")
            return 0
        sandbox_config = args.config
        if sandbox_config is None and args.fleet != "1000":
            print(f"starting a sandbox in {workdir / 'sandbox'} ...", file=sys.stderr)
            sandbox = start_sandbox(workdir / "sandbox")
            sandbox_config = workdir / "sandbox" / "warroom.toml"
        print(f"\nwarroom at scale, {SIZE[0]}x{SIZE[1]}, {os.cpu_count()} cores; HTTP servers on {len(servers.ports)} loopback ports")
        if args.fleet in ("300", "both"):
            config = write_config(workdir / "fleet300.toml", servers.urls(300), sandbox_config, postgres=10, redis=5, refresh=1.0)
            profile = args.profile.with_suffix(".300") if args.profile else None
            figures = results["300"] = run_cockpit(config, 1.0, seconds, presses=args.presses, prefill=False, profile=profile)
            report_cockpit(f"300 HTTP (30 ports) + 10 PostgreSQL + 5 Redis, refresh 1 s, {seconds:.0f} s", figures, cpu_budget=0.25, memory=False, http_count=300)
        if args.fleet in ("1000", "both"):
            long_seconds = 300.0 if args.long else seconds
            config = write_config(workdir / "fleet1000.toml", servers.urls(1000), None, postgres=0, redis=0, refresh=5.0)
            profile = args.profile.with_suffix(".1000") if args.profile else None
            figures = results["1000"] = run_cockpit(config, 5.0, long_seconds, presses=args.presses, prefill=not args.no_prefill, profile=profile)
            figures["full_history"] = not args.no_prefill
            history = "history grown live" if args.no_prefill else "history full from the first reading"
            report_cockpit(f"1000 HTTP (100 ports), refresh 5 s, {long_seconds:.0f} s, {history}", figures, cpu_budget=0.25, memory=not args.no_prefill, http_count=1000)
        summary(results)
    finally:
        servers.close()
        if sandbox is not None:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=60)
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda hook: None  # the pty reader ends with the cockpit
    raise SystemExit(main())
