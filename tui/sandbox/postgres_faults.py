"""The sandbox PostgreSQL's four faults, injected and healed through real sessions.

A mixin of PostgresComponent (tui/sandbox/postgres.py), which owns the servers, `connect`
and the fault bookkeeping (`fault`, `waiters`, `lag_task`) these methods use. The sessions an
operator's runbook may end (lock holder, idle transaction, idle pool) log in as the application
role, as in production: warroom's operator role may signal those, never a superuser's."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from tui.sandbox.base import SandboxError

MAX_CONNECTIONS = 40
APP_USER = "shop"  # tui.sandbox.postgres.APP_ROLE
# Fault sessions end by themselves after this long even when nobody heals them.
FAULT_TTL_MS = 10 * 60 * 1000
LAG_BATCH_ROWS = 1000  # ~1.1 MiB of WAL per batch
LAG_BATCHES = 30
LAG_PERIOD_S = 0.5


async def _execute_and_commit(conn: psycopg.AsyncConnection[Any], statement: str) -> None:
    await conn.execute(statement)
    await conn.commit()


def _slots_full(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError) and "remaining connection slots are reserved" in str(exc)


class PostgresFaults:
    """inject/heal for lock-contention, connection-exhaustion, idle-in-transaction and
    replication-lag; scenarios it does not know go to the next class (Component)."""

    scenarios: tuple[str, ...]
    fault: dict[str, list[psycopg.AsyncConnection[Any]]]
    waiters: list[asyncio.Task[Any]]
    lag_task: asyncio.Task[None] | None

    async def connect(self, role: str = "primary", *, app: str = "sandbox", autocommit: bool = True, options: str = "",
                      user: str = "postgres") -> psycopg.AsyncConnection[Any]:
        raise NotImplementedError

    async def inject(self, scenario: str) -> str:
        if scenario not in self.scenarios:
            return await super().inject(scenario)
        if scenario in self.fault:
            raise SandboxError(f"{scenario} is already active (heal it first)")
        self.fault[scenario] = []
        try:
            return await getattr(self, "_inject_" + scenario.replace("-", "_"))()
        except BaseException:
            await self._close_fault(scenario)
            raise

    async def heal(self, scenario: str) -> str:
        if scenario not in self.scenarios:
            return await super().heal(scenario)
        if scenario == "replication-lag":
            message = await self._heal_replication_lag()
        else:
            closed = await self._close_fault(scenario)
            message = f"{scenario}: closed {closed} session(s)" if closed else f"{scenario} was not active"
        await self._reset_statement_stats()
        return message

    async def _reset_statement_stats(self) -> None:
        # The drill's own statements (UPDATEs that waited on the lock, bulk lag writes) would
        # keep slow_statements failing forever: a healed sandbox returns to its baseline.
        async with await self.connect() as conn:
            await conn.execute("SELECT pg_stat_statements_reset()")

    async def _close_fault(self, scenario: str) -> int:
        conns = self.fault.pop(scenario, [])
        if scenario == "lock-contention":
            for task in self.waiters:
                task.cancel()
            await asyncio.gather(*self.waiters, return_exceptions=True)
            self.waiters = []
        for conn in conns:
            await conn.close()  # closes the socket: the backend ends and releases its locks
        return len(conns)

    async def _session(self, scenario: str, app: str, *, role: str = "primary", autocommit: bool = False, options: str = "",
                       user: str = APP_USER) -> psycopg.AsyncConnection[Any]:
        conn = await self.connect(role, app=app, autocommit=autocommit, options=options, user=user)
        self.fault[scenario].append(conn)
        return conn

    async def _inject_lock_contention(self) -> str:
        ttl = f"-c idle_in_transaction_session_timeout={FAULT_TTL_MS} -c statement_timeout={FAULT_TTL_MS}"
        holder = await self._session("lock-contention", "sandbox-lock-holder", options=ttl)
        await holder.execute("UPDATE accounts SET balance = balance WHERE id = 1 /* nightly batch: holds row lock */")
        first = await self._session("lock-contention", "sandbox-lock-waiter", options=ttl)
        await first.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 2")
        queued = [
            (first, "UPDATE accounts SET balance = balance + 1 WHERE id = 1"),  # waits on the holder
            (await self._session("lock-contention", "sandbox-lock-waiter", options=ttl),
             "UPDATE accounts SET balance = balance - 1 WHERE id = 2"),  # waits on the first waiter
            (await self._session("lock-contention", "sandbox-lock-waiter", options=ttl),
             "UPDATE accounts SET balance = balance + 2 WHERE id = 1"),  # waits on the holder too
        ]
        pids = [conn.info.backend_pid for conn, _ in queued]
        async with await self.connect() as admin:
            for conn, statement in queued:
                # Like an application, a waiter commits once its lock is granted: terminating
                # the root blocker then clears the whole queue instead of making a new blocker.
                self.waiters.append(asyncio.create_task(_execute_and_commit(conn, statement)))
                await self._wait_blocked(admin, conn.info.backend_pid)
        return (f"lock holder pid {holder.info.backend_pid} (idle in transaction after an UPDATE of accounts id=1); "
                f"blocked pids {', '.join(map(str, pids))} (pid {pids[1]} waits on pid {pids[0]})")

    async def _wait_blocked(self, admin: psycopg.AsyncConnection[Any], pid: int) -> None:
        for _ in range(100):
            cur = await admin.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,))
            row = await cur.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.02)
        raise SandboxError(f"pid {pid} did not queue for the lock")

    async def _inject_connection_exhaustion(self) -> str:
        async with await self.connect() as admin:
            cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
            row = await cur.fetchone()
            in_use = int(row[0]) if row else 0
        # The application role may fill every slot but the last three (kept for superusers and
        # pg_use_reserved_connections); the admin session above is gone by now.
        wanted = max(0, MAX_CONNECTIONS - 3 - (in_use - 1))
        for start in range(0, wanted, 8):
            opened = await asyncio.gather(*(
                self._session("connection-exhaustion", "sandbox-exhaust", autocommit=True, options=f"-c idle_session_timeout={FAULT_TTL_MS}")
                for _ in range(min(8, wanted - start))
            ), return_exceptions=True)
            refused = [r for r in opened if isinstance(r, BaseException)]
            # Someone else took a slot meanwhile: the shop's share is full, which is the fault.
            if any(not _slots_full(r) for r in refused):
                raise next(r for r in refused if not _slots_full(r))
            if refused:
                break
        held = len(self.fault["connection-exhaustion"])
        return (f"opened {held} idle connections as {APP_USER}; {MAX_CONNECTIONS - 3} of max_connections={MAX_CONNECTIONS} "
                "in use (the last 3 are reserved)")

    async def _inject_idle_in_transaction(self) -> str:
        conn = await self._session("idle-in-transaction", "sandbox-report-export", options=f"-c idle_in_transaction_session_timeout={FAULT_TTL_MS}")
        await conn.execute("SELECT count(*) FROM orders /* monthly report export */")
        return f"pid {conn.info.backend_pid} is idle in transaction after a SELECT on orders"

    async def _inject_replication_lag(self) -> str:
        replica = await self._session("replication-lag", "sandbox-replay-pause", role="replica", autocommit=True, user="postgres")
        await replica.execute("SELECT pg_wal_replay_pause()")
        self.lag_task = asyncio.create_task(self._write_wal(), name="postgres-sandbox-lag-writer")
        return f"replay paused on the replica; the primary writes ~{LAG_BATCH_ROWS // 1000} MiB every {LAG_PERIOD_S:g}s (up to {LAG_BATCHES} batches)"

    async def _write_wal(self) -> None:
        async with await self.connect(app="sandbox-bulk-import") as conn:
            for _ in range(LAG_BATCHES):
                await conn.execute("INSERT INTO audit_log (payload) SELECT repeat(md5(g::text), 32) FROM generate_series(1, %s) g", (LAG_BATCH_ROWS,))
                await asyncio.sleep(LAG_PERIOD_S)

    async def _heal_replication_lag(self) -> str:
        if self.lag_task is not None:
            self.lag_task.cancel()
            await asyncio.gather(self.lag_task, return_exceptions=True)
            self.lag_task = None
        await self._close_fault("replication-lag")
        async with await self.connect("replica") as replica:
            await replica.execute("SELECT pg_wal_replay_resume()")
        async with await self.connect() as primary:
            await primary.execute("TRUNCATE audit_log")
        return "replay resumed on the replica; bulk writes stopped"
