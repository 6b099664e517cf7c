"""PostgreSQL probes: connections, locks, replication, long and idle transactions, slow statements.

One refresh costs one statement (a JSON snapshot of pg_stat_activity, blocking pids, replication
state) plus, when pg_stat_statements is installed, a second one for the slowest statements;
a long-lived `Session` re-reads those at most every PGSS_EVERY_S seconds. Probe sessions are
read-only at the server (`default_transaction_read_only=on`) with statement and lock timeouts.
`run_readonly_sql` serves runbook `sql` steps (on a probe `Session`'s connection when given one,
so a runbook walk takes no extra connection slot); `run_action_sql` is for confirmed actions only
and connects with the target's own action credential (`action_dsn`), never the probes' one.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from probes import postgres_sql as shape
from probes.config import PostgresTarget
from probes.result import DEFAULT_TIMEOUT_S, ProbeResult, guarded
from probes.secrets import redact
from probes.thresholds import Thresholds

KIND = "postgres"
PROBES = ("connections", "locks", "replication", "long_queries", "idle_in_transaction", "slow_statements")
APPLICATION_NAME = "warroom"
# pg_stat_statements reads every entry and the query-text file: keep it off most refreshes.
PGSS_EVERY_S = 10.0
MAX_ROWS = 500

T = TypeVar("T")


class SqlError(Exception):
    """A runbook or action statement failed; the message is short, names the target, has no secret."""


# --- connecting and describing failures --------------------------------------------------------


def _where(target: PostgresTarget, dsn: str | None = None) -> dict[str, str]:
    try:
        params = conninfo_to_dict(dsn or target.dsn)
    except psycopg.Error:
        params = {}
    host = str(params.get("host") or "localhost").split(",")[0]
    port = str(params.get("port") or "5432").split(",")[0]
    return {"host": host, "addr": f"{host}:{port}", "user": str(params.get("user") or "?"), "db": str(params.get("dbname") or "?")}


_ERRORS: list[tuple[str, str]] = [
    (r"Connection refused", "connection refused at {addr} (is PostgreSQL running?)"),
    (r'password authentication failed for user "([^"]+)"', "password authentication failed for user {0}"),
    (r"no password supplied|password is required", "a password is required for user {user} and none was given"),
    (r'database "([^"]+)" does not exist', "database {0} does not exist"),
    (r'role "([^"]+)" does not exist', "role {0} does not exist"),
    (r"no pg_hba\.conf entry", "pg_hba.conf rejects user {user} / database {db} from here ({addr})"),
    (r"too many clients|remaining connection slots are reserved", "too many connections at {addr} (max_connections reached)"),
    (r"the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)", "the database system is {0}"),
    (r"could not translate host name|failed to resolve host|Name or service not known|nodename nor servname|Temporary failure in name resolution",
     "cannot resolve host {host} (DNS failure)"),
    (r"timeout expired|timed out|connection timeout", "timed out connecting to {addr}"),
    (r"canceling statement due to statement timeout", "query timed out (statement_timeout)"),
    (r"canceling statement due to lock timeout", "gave up waiting for a lock (lock_timeout)"),
    (r"No route to host|Network is unreachable", "cannot reach {addr} (no route)"),
    (r"server closed the connection unexpectedly|terminating connection|consuming input failed", "the server closed the connection ({addr})"),
]


def describe_error(exc: BaseException, target: PostgresTarget, dsn: str | None = None) -> str:
    """A short operator message for a driver failure; never contains a password."""
    if isinstance(exc, TimeoutError):
        return redact(f"timed out at {_where(target, dsn)['addr']}")
    text = str(exc)
    for pattern, template in _ERRORS:
        match = re.search(pattern, text)
        if match:
            return redact(template.format(*match.groups(), **_where(target, dsn)))
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return redact(re.sub(r"^(connection failed: )?connection to server at .*? failed: (FATAL: +)?", "", first))[:200]


def _options(timeout: float, *, read_only: bool) -> str:
    # Server-side limits fire before the client-side ones, so the server ends its own work cleanly.
    ms = max(100, int(timeout * 800))
    parts = [f"-c statement_timeout={ms}", f"-c lock_timeout={ms}", "-c idle_in_transaction_session_timeout=10000",
             # The server lexes string literals the way runbooks.classify does: a backslash
             # inside '...' is an ordinary character, never an escape that ends the literal.
             "-c standard_conforming_strings=on"]
    if read_only:
        parts.insert(0, "-c default_transaction_read_only=on")
    return " ".join(parts)


async def _connect(target: PostgresTarget, timeout: float, *, read_only: bool = True, autocommit: bool = True, app: str = APPLICATION_NAME,
                   dsn: str | None = None) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        dsn or target.dsn,
        autocommit=autocommit,
        application_name=app,
        connect_timeout=max(2, math.ceil(timeout)),  # libpq's floor; asyncio bounds it tighter
        options=_options(timeout, read_only=read_only),
    )


async def _bounded(conn: psycopg.AsyncConnection[Any], work: Awaitable[T], seconds: float) -> T:
    """Await `work` on `conn`; past the deadline close the connection instead of cancelling.

    Cancelling a psycopg query sends a cancel request and waits up to 5 s for a hung server to
    answer it; closing the socket first makes the abandoned query end at once.
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.05, seconds))
    finally:
        if not task.done():
            await conn.close()
            task.cancel()
            # Let the abandoned query unregister its socket before a reconnect can reuse the fd
            # number; with the connection closed it ends at once instead of sending a cancel.
            await asyncio.wait({task}, timeout=0.2)
    if not done:
        raise TimeoutError
    return task.result()


# --- the long-lived session --------------------------------------------------------------------


class Session:
    """One read-only connection per target, reused across refreshes; reconnects after a failure."""

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.lock = asyncio.Lock()
        self.slow: tuple[float, list[dict[str, Any]] | None, str] | None = None
        self.statements = 0  # statements sent, for the budget checks in tests and perf scripts
        self.reads = 0  # runbook statements run on this connection (read_rows)

    async def _connection(self, timeout: float) -> psycopg.AsyncConnection[Any]:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = None
            self.slow = None
            self.conn = await _connect(self.target, timeout)
        return self.conn

    async def fetch_value(self, sql: str, deadline: float) -> Any:
        """Run one statement returning one value; a failed connection is dropped for a fresh one."""
        conn = await self._connection(deadline - time.monotonic())
        try:
            self.statements += 1

            async def one() -> Any:
                cur = await conn.execute(sql)
                row = await cur.fetchone()
                return row[0] if row else None

            return await _bounded(conn, one(), deadline - time.monotonic())
        except (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError, asyncio.CancelledError):
            await self._drop()
            raise

    async def _drop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        self.conn = None

    async def snapshot(self, deadline: float) -> dict[str, Any]:
        return await self.fetch_value(shape.SNAPSHOT_SQL, deadline)

    async def slow_statements(self, schema: str | None, deadline: float, *, cached: bool) -> tuple[list[dict[str, Any]] | None, str]:
        if schema is None:
            return None, ""
        if cached and self.slow and time.monotonic() - self.slow[0] < PGSS_EVERY_S:
            return self.slow[1], self.slow[2]
        try:
            rows, note = await self.fetch_value(shape.SLOW_SQL.format(schema=schema), deadline), ""
        except psycopg.errors.ObjectNotInPrerequisiteState:
            rows, note = None, "pg_stat_statements installed but not loaded (add it to shared_preload_libraries)"
        except psycopg.errors.InsufficientPrivilege:
            rows, note = None, "pg_stat_statements not readable by this role (grant pg_read_all_stats)"
        self.slow = (time.monotonic(), rows, note)
        return rows, note

    async def read_rows(self, sql: str, timeout: float) -> list[dict[str, Any]]:
        """One runbook statement on this session's connection, in a READ ONLY transaction that
        is rolled back, with the step's own statement and lock timeouts. Serialised with the
        probe rounds by `lock`, so a runbook read never takes one more connection slot (which
        matters most while diagnosing connection exhaustion). Raises like `fetch_value`."""
        deadline = time.monotonic() + timeout
        async with asyncio.timeout(timeout):  # waiting for a probe round counts against the step
            await self.lock.acquire()
        try:
            async with asyncio.timeout(max(0.05, deadline - time.monotonic())):
                conn = await self._connection(deadline - time.monotonic())
            self.reads += 1
            ms = max(100, int((deadline - time.monotonic()) * 800))
            try:
                return await _bounded(conn, _read_only_rows(conn, sql, ms), deadline - time.monotonic())
            except (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError, asyncio.CancelledError):
                await self._drop()
                raise
        finally:
            self.lock.release()

    async def aclose(self) -> None:
        await self._drop()


# --- the probes ----------------------------------------------------------------------------------


async def _collect(target: PostgresTarget, thresholds: Thresholds, session: Session, timeout: float, *, cached: bool) -> list[ProbeResult]:
    deadline = time.monotonic() + timeout * 0.9  # leave guarded()'s backstop the last tenth
    async with session.lock:
        snap = await session.snapshot(deadline)
        statements, note = await session.slow_statements(snap["pgss_schema"], deadline, cached=cached)
    name = target.name
    return [
        shape.connections(name, snap, thresholds),
        shape.locks(name, snap, thresholds),
        shape.replication(name, target.role, target.expect_replicas, snap, thresholds),
        shape.long_queries(name, snap, thresholds),
        shape.idle_in_transaction(name, snap, thresholds),
        shape.slow_statements(name, statements, thresholds, note),
    ]


async def collect(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> list[ProbeResult]:
    """Every PostgreSQL probe of one instance in one or two statements; never raises."""
    own = session is None
    active = session or Session(target)
    try:
        return await guarded(
            target.name, KIND, PROBES, _collect(target, thresholds, active, timeout, cached=not own),
            timeout=timeout, describe_error=lambda exc: describe_error(exc, target),
        )
    finally:
        if own:
            await active.aclose()


async def _single(probe: str, target: PostgresTarget, thresholds: Thresholds, timeout: float, session: Session | None) -> ProbeResult:
    results = await collect(target, thresholds, timeout=timeout, session=session)
    return next(r for r in results if r.probe == probe)


async def connections(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("connections", target, thresholds, timeout, session)


async def locks(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("locks", target, thresholds, timeout, session)


async def replication(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("replication", target, thresholds, timeout, session)


async def long_queries(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("long_queries", target, thresholds, timeout, session)


async def idle_in_transaction(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("idle_in_transaction", target, thresholds, timeout, session)


async def slow_statements(target: PostgresTarget, thresholds: Thresholds, *, timeout: float = DEFAULT_TIMEOUT_S, session: Session | None = None) -> ProbeResult:
    return await _single("slow_statements", target, thresholds, timeout, session)


# --- statements for runbooks and actions --------------------------------------------------------


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        # A prepared statement is exactly one statement: no "COMMIT; SET
        # default_transaction_read_only = off; ..." smuggled in after the first.
        await cur.execute(sql, prepare=True)  # type: ignore[arg-type]
        return await cur.fetchmany(MAX_ROWS) if cur.description else []


async def _read_only_rows(conn: psycopg.AsyncConnection[Any], sql: str, timeout_ms: int) -> list[dict[str, Any]]:
    """`sql` in a READ ONLY transaction, always rolled back, on a (probe) autocommit connection."""
    await conn.set_read_only(True)  # BEGIN READ ONLY, on top of the session default
    async with conn.transaction(force_rollback=True):
        # The step's own limits, for this transaction only: the probes keep theirs.
        await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        await conn.execute(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
        return await _rows(conn, sql)


async def _one_statement(target: PostgresTarget, sql: str, timeout: float, *, read_only: bool) -> list[dict[str, Any]]:
    async def work(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
        if read_only:
            await conn.set_read_only(True)  # BEGIN READ ONLY, on top of the session default
        rows = await _rows(conn, sql)
        if read_only:
            await conn.rollback()
        return rows

    started = time.monotonic()
    app = APPLICATION_NAME if read_only else f"{APPLICATION_NAME}-action"
    dsn = target.dsn if read_only else target.action_dsn
    if not dsn:
        raise SqlError(f"{target.name}: {missing_action_credential(target)}")
    try:
        async with asyncio.timeout(timeout):
            conn = await _connect(target, timeout, read_only=read_only, autocommit=not read_only, app=app, dsn=dsn)
        try:
            return await _bounded(conn, work(conn), timeout - (time.monotonic() - started))
        finally:
            await conn.close()
    except TimeoutError:
        raise SqlError(f"{target.name}: timed out after {timeout:g}s") from None
    except psycopg.Error as exc:
        raise SqlError(redact(f"{target.name}: {describe_error(exc, target, dsn)}")) from None


async def run_readonly_sql(target: PostgresTarget, sql: str, *, timeout: float = DEFAULT_TIMEOUT_S,
                           session: Session | None = None) -> list[dict[str, Any]]:
    """One statement in a READ ONLY transaction (rolled back), bounded by statement_timeout.

    With `session` (the cockpit's probe session, or a headless walk's), it runs on that
    session's connection instead of a new one. Returns up to MAX_ROWS rows as dicts; raises
    SqlError with a short message on any failure.
    """
    if session is None:
        return await _one_statement(target, sql, timeout, read_only=True)
    try:
        return await session.read_rows(sql, timeout)
    except TimeoutError:
        raise SqlError(f"{target.name}: timed out after {timeout:g}s") from None
    except psycopg.Error as exc:
        raise SqlError(redact(f"{target.name}: {describe_error(exc, target)}")) from None


async def run_action_sql(target: PostgresTarget, sql: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
    """One confirmed remediation statement (it may write; autocommit). Never used by probes.

    Connects with `target.action_dsn`; a target without one raises SqlError naming the key."""
    return await _one_statement(target, sql, timeout, read_only=False)


def missing_action_credential(target: PostgresTarget) -> str:
    """Why `target` runs no action: which key (or variable) to set. Empty when it has one."""
    if target.action_dsn:
        return ""
    if target.action_dsn_env:
        return f"no action credential: environment variable {target.action_dsn_env} (action_dsn_env) is not set"
    return "no action credential: set action_dsn or action_dsn_env on this target"


# --- is the read role least-privileged? ---------------------------------------------------------

_ROLE_SQL = """
SELECT current_user AS who, r.rolsuper AS superuser, r.rolcreaterole AS createrole,
       pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signals
FROM pg_roles r WHERE r.rolname = current_user
"""


async def read_role_risk(target: PostgresTarget, *, timeout: float = DEFAULT_TIMEOUT_S) -> str | None:
    """A warning when the probes' role could change server state (superuser, signals other
    backends, creates roles): the classifier would then be the only lock. None when the role is
    least-privileged, or when the target cannot be read (its probes already say why)."""
    try:
        rows = await run_readonly_sql(target, _ROLE_SQL, timeout=timeout)
    except SqlError:
        return None
    if not rows:
        return None
    row = rows[0]
    who = row["who"]
    if row["superuser"]:
        return f"{target.name}: probes connect as superuser '{who}'; grant pg_monitor to a login role instead, see README"
    powers = [p for p, held in (("may signal other backends (pg_signal_backend)", row["signals"]),
                                ("may create and grant roles (CREATEROLE)", row["createrole"])) if held]
    if not powers:
        return None
    return f"{target.name}: probes connect as '{who}', which {' and '.join(powers)}; use a role with pg_monitor only, see README"

