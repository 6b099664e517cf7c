"""Cockpit performance figures beside the budgets of issue 3 (a script, not a pytest test).

    python tests/perf/bench_cockpit.py                 # start a sandbox, measure, stop it
    python tests/perf/bench_cockpit.py --config FILE   # an already running sandbox/config
    python tests/perf/bench_cockpit.py --replay        # no sandbox: fixed readings replayed live
                                                       # (HTTP latencies jitter, as they do live)

The cockpit runs as a real process on a pseudo-terminal of 120x40 with a 1 s refresh, as an
operator would run it. Figures: first frame (vs a minimal Textual app on the same machine),
first live data on screen, idle CPU, bytes written to the terminal per second, resident
memory, and (with PostgreSQL) statements and server time per refresh per instance.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
SIZE = (120, 40)
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")
# The reference: the smallest usual Textual app, a header, a line of text and a footer.
MINIMAL = (
    "from textual.app import App\nfrom textual.widgets import Footer, Header, Static\n"
    "class Minimal(App):\n    def compose(self):\n        yield Header()\n        yield Static('minimal-first-frame')\n"
    "        yield Footer()\n    def on_key(self, event):\n        self.exit()\nMinimal().run()\n"
)
REPLAY = (
    "import sys, time, random\nsys.path.insert(0, {root!r})\n"
    "from tests.tui import fixtures\nfrom tui.app import make_app\nfrom tui.messages import ProbesUpdated\n"
    "from dataclasses import replace\n"
    "class Replay:\n"
    "    refresh_s = 1.0\n"
    "    def start(self, app):\n        self.app = app\n        self.tick()\n"
    "    def tick(self):\n"
    "        now = time.time()\n"
    "        results = [replace(r, timestamp=now, value=(r.value * random.uniform(0.8, 1.2) if r.value else r.value)) for r in fixtures.incident_results(now)]\n"
    "        self.app.post_message(ProbesUpdated(tuple(results)))\n"
    "        self.app.set_timer(self.refresh_s, self.tick)\n"
    "    async def stop(self):\n        pass\n"
    "make_app(fixtures.environment(), source=Replay()).run()\n"
)


class Terminal:
    """A child process on a pseudo-terminal; every byte it writes is timestamped."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        child_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(SIZE[0]), "LINES": str(SIZE[1]), **(env or {})}
        child_env.pop("NO_COLOR", None)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=child_env, cwd=ROOT, start_new_session=True)
        os.close(slave)
        self.master = master
        self.chunks: list[tuple[float, bytes]] = []
        self.text = b""
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.perf_counter(), data))
                self.text += ANSI.sub(b"", data)

    def wait_for(self, pattern: bytes, timeout: float = 30) -> float | None:
        """Seconds from start until `pattern` (a regex) shows in the output."""
        regex = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                if regex.search(self.text):
                    return self.chunks[-1][0] - self.started
            time.sleep(0.002)
        return None

    def send_and_wait(self, keys: bytes, pattern: bytes, timeout: float = 5) -> float | None:
        """Seconds from writing `keys` until `pattern` shows in what is written after them."""
        regex = re.compile(pattern)
        with self._lock:
            offset = len(self.text)
        sent = time.perf_counter()
        os.write(self.master, keys)
        while time.perf_counter() < sent + timeout:
            with self._lock:
                if regex.search(self.text, offset):
                    return self.chunks[-1][0] - sent
            time.sleep(0.001)
        return None

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(len(data) for t, data in self.chunks if start <= t < end)

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        os.close(self.master)


def first_frame(apps: list[tuple[list[str], bytes]], runs: int) -> list[float]:
    """Median seconds from start to the first frame (its `marker` on the terminal) per app.

    The apps take turns, run after run, so a change in the machine's load affects them alike.
    """
    times: list[list[float]] = [[] for _ in apps]
    for _ in range(runs):
        for (argv, marker), found in zip(apps, times, strict=True):
            term = Terminal(argv)
            elapsed = term.wait_for(marker)
            term.close()
            if elapsed is None:
                raise SystemExit(f"no first frame from {argv}")
            found.append(elapsed)
    return [statistics.median(found) for found in times]


def cockpit_argv(config: Path | None) -> list[str]:
    if config is None:
        return [sys.executable, "-c", REPLAY.format(root=str(ROOT))]
    return [sys.executable, "-m", "tui", "--config", str(config), "--refresh", "1"]


def steady_state(argv: list[str], seconds: float) -> dict[str, float | None]:
    import psutil

    term = Terminal(argv)
    first_data = term.wait_for(rb"last \d\d:\d\d:\d\d", timeout=15)
    time.sleep(3)  # let every target's first round and the first layout settle
    proc = psutil.Process(term.process.pid)
    cpu_before = proc.cpu_times()
    t0 = time.perf_counter()
    time.sleep(seconds)
    t1 = time.perf_counter()
    cpu_after = proc.cpu_times()
    rss = proc.memory_info().rss
    written = term.bytes_between(t0, t1)
    term.close()
    cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / (t1 - t0)
    return {"first_data_s": first_data, "cpu": cpu, "bytes_per_s": written / (t1 - t0), "rss_mb": rss / 1024 / 1024}


def keys_with_primary_stopped(argv: list[str], sandbox_dir: Path, presses: int = 10) -> tuple[list[float], bool]:
    """Key response times (`?` until the help screen shows) while the sandbox's primary and
    all its processes are stopped with SIGSTOP, and whether its panes showed the timeout."""
    import json

    import psutil

    pid = json.loads((sandbox_dir / "sandbox.json").read_text())["pids"]["primary"]
    term = Terminal(argv)
    term.wait_for(rb"last \d\d:\d\d:\d\d", timeout=15)
    time.sleep(2)
    root = psutil.Process(pid)
    stopped = [root, *root.children(recursive=True)]
    times: list[float] = []
    try:
        for process in stopped:
            process.send_signal(signal.SIGSTOP)
        # A probe of the primary is now in flight and hangs until its timeout.
        time.sleep(0.5)
        for _ in range(presses):
            elapsed = term.send_and_wait(b"?", rb"Keys \(Escape closes\)")
            times.append(elapsed if elapsed is not None else float("inf"))
            term.send_and_wait(b"\x1b", rb"Services")
            time.sleep(0.2)
        timed_out = term.send_and_wait(b"", rb"timeout|timed out", timeout=10) is not None
    finally:
        for process in stopped:
            try:
                process.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        term.close()
    return times, timed_out


async def _postgres_cost(config: Path, seconds: float) -> dict[str, tuple[float, float, str]]:
    """Statements and server ms per refresh per instance, of the cockpit's own sessions only.

    Statements are counted where the cockpit sends them (psycopg's cursor, in this process);
    server time is the pg_stat_statements time of those statements: other clients of the
    instance (the sandbox's simulated application) are left out of both figures.
    """
    import asyncio

    import psycopg

    from probes.config import load_config
    from tui.app import make_app

    env = load_config(config).environment()
    sent: dict[int, list[str]] = {}  # server port -> statements the cockpit sent
    execute = psycopg.AsyncCursor.execute

    async def counting_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.setdefault(self.connection.info.port, []).append(query if isinstance(query, str) else str(query))
        return await execute(self, query, *args, **kwargs)

    before = {t.name: await _statement_stats(t.dsn) for t in env.postgres}
    app = make_app(env, refresh_s=1.0)
    psycopg.AsyncCursor.execute = counting_execute  # type: ignore[method-assign]
    try:
        async with app.run_test(size=SIZE):
            await asyncio.sleep(seconds)
            rounds = dict(app.source.rounds)  # type: ignore[attr-defined]
            counted = {port: list(queries) for port, queries in sent.items()}
    finally:
        psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    figures: dict[str, tuple[float, float, str]] = {}
    for target in env.postgres:
        after = await _statement_stats(target.dsn)
        n = max(1, rounds.get(f"postgres:{target.name}", 0))
        queries = counted.get(_port(target.dsn), [])
        if after is None or before[target.name] is None:
            figures[target.name] = (len(queries) / n, float("nan"), "client count (pg_stat_statements not installed)")
            continue
        prefixes = {_prefix(q) for q in queries}
        calls = ms = 0.0
        for queryid, (c, t, text) in after.items():
            c0, t0, _ = before[target.name].get(queryid, (0.0, 0.0, ""))  # type: ignore[union-attr]
            if c > c0 and _prefix(text) in prefixes:
                calls, ms = calls + c - c0, ms + t - t0
        how = f"{len(queries)} sent, {calls:.0f} seen by pg_stat_statements, {n} refreshes"
        figures[target.name] = (len(queries) / n, ms / n, how)
    return figures


def _port(dsn: str) -> int | None:
    from urllib.parse import urlsplit

    return urlsplit(dsn).port


def _prefix(query: str) -> str:
    """What a statement's text and its pg_stat_statements form share: the words before the first
    constant, parameter or comment."""
    text = " ".join(query.split())
    return re.split(r"\$\d|%s|'|--|\d", text, maxsplit=1)[0][:60]


async def _statement_stats(dsn: str) -> dict[int, tuple[float, float, str]] | None:
    """pg_stat_statements per statement: (calls, total ms, text), or None without the extension."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            cur = await conn.execute("SELECT queryid, calls, total_exec_time, query FROM pg_stat_statements WHERE queryid IS NOT NULL")
        except psycopg.Error:
            return None
        return {int(q): (float(c), float(t), str(text)) for q, c, t, text in await cur.fetchall()}


def start_sandbox(directory: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "sandbox", "up", "--dir", str(directory), "--stop-on-eof"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("ready: "):
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process
    raise SystemExit("the sandbox did not start")


def row(name: str, value: str, budget: str, ok: bool | None) -> None:
    mark = "ok" if ok else ("--" if ok is None else "OVER")
    print(f"{name:<38} {value:>14}   budget {budget:<16} {mark}")


def compile_bytecode() -> None:
    """Bytecode for warroom's own modules, as an installed package has (pip compiles it).

    An editable install run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every
    module from source at each start, while Textual's come precompiled: that would charge
    the cockpit ~40 ms a minimal app never pays. Existing bytecode is read even with that
    variable set."""
    import compileall

    for package in ("tui", "widgets", "probes", "runbooks"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="warroom.toml of a running sandbox (skips starting one)")
    parser.add_argument("--replay", action="store_true", help="no sandbox: replay fixed readings every second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the steady-state window")
    parser.add_argument("--runs", type=int, default=9, help="first-frame runs per app (median)")
    args = parser.parse_args()
    compile_bytecode()
    sandbox = None
    config: Path | None = args.config
    if not args.replay and config is None:
        directory = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
        print(f"starting a sandbox in {directory} ...", file=sys.stderr)
        sandbox = start_sandbox(directory)
        config = directory / "warroom.toml"
    try:
        argv = cockpit_argv(config)
        # The cockpit's first frame: the pane titles are on screen.
        minimal, cockpit = first_frame([([sys.executable, "-c", MINIMAL], rb"minimal-first-frame"), (argv, rb"Services")], args.runs)
        print(f"\nwarroom cockpit, {SIZE[0]}x{SIZE[1]}, 1 s refresh, {'replayed fixed readings' if config is None else config}\n")
        row("first frame (minimal Textual app)", f"{minimal * 1000:.0f} ms", "reference", None)
        row("first frame (cockpit)", f"{cockpit * 1000:.0f} ms", f"<= {minimal * 1.15 * 1000:.0f} ms (1.15x)", cockpit <= minimal * 1.15)
        steady = steady_state(argv, args.seconds)
        first_data = steady["first_data_s"]
        row("first live data on screen", f"{first_data * 1000:.0f} ms" if first_data else "never", "< 1000 ms", bool(first_data and first_data < 1.0))
        row("idle CPU (one core)", f"{steady['cpu']:.1%}", "< 3%", steady["cpu"] < 0.03)  # type: ignore[operator]
        row("output to the terminal", f"{steady['bytes_per_s'] / 1024:.2f} KB/s", "< 5 KB/s", steady["bytes_per_s"] < 5 * 1024)  # type: ignore[operator]
        row("resident memory", f"{steady['rss_mb']:.0f} MB", "< 150 MB", steady["rss_mb"] < 150)  # type: ignore[operator]
        if config is not None and (config.parent / "sandbox.json").exists():
            times, timed_out = keys_with_primary_stopped(argv, config.parent)
            worst = max(times)
            row("key response, primary stopped (worst)", f"{worst * 1000:.0f} ms", "< 100 ms", worst < 0.1)
            print(f"  ({len(times)} presses of `?` while the primary is SIGSTOPped, median {statistics.median(times) * 1000:.0f} ms; "
                  f"primary panes showed the timeout: {'yes' if timed_out else 'NO'})")
        if config is not None:
            import asyncio

            from probes.config import load_config

            if load_config(config).environment().postgres:
                for name, (statements, ms, how) in asyncio.run(_postgres_cost(config, 10.0)).items():
                    row(f"{name}: statements per refresh", f"{statements:.1f}", "<= 3", statements <= 3)
                    row(f"{name}: server time per refresh", f"{ms:.2f} ms", "<= 2 ms", ms <= 2 if ms == ms else None)
                    print(f"  ({name}: {how})")
        else:
            print("\n(no PostgreSQL in replay mode: run with a sandbox for the statement figures)")
    finally:
        if sandbox is not None:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
