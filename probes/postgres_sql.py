"""The PostgreSQL probes' SQL and the pure functions turning one snapshot into probe results."""

from __future__ import annotations

from collections import Counter
from typing import Any

from probes.result import ProbeResult, Status, grade, worst
from probes.thresholds import Thresholds
from probes.units import duration, duration_ms, size

KIND = "postgres"
QUERY_CHARS = 200
MAX_SESSIONS = 50

# One statement per refresh for everything but pg_stat_statements. pg_blocking_pids() and the
# pg_locks lookup are costly, so they only run for sessions actually waiting on a lock; CASE keeps
# primary-only / standby-only functions from raising on the other role. pg_stat_statements drops
# comments and constants but keeps identifiers: the warroom_* names let SLOW_SQL skip our own.
SNAPSHOT_SQL = """WITH warroom_activity AS (
  SELECT a.pid, a.usename, a.application_name, host(a.client_addr) AS client_addr, a.backend_type,
         a.state, a.wait_event_type, a.wait_event,
         round(extract(epoch FROM now() - a.xact_start), 3) AS xact_age_s,
         round(extract(epoch FROM now() - a.query_start), 3) AS query_age_s,
         round(extract(epoch FROM now() - a.state_change), 3) AS state_age_s,
         left(a.query, 200) AS query,
         CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END AS blocked_by,
         CASE WHEN a.wait_event_type = 'Lock' THEN
           (SELECT round(extract(epoch FROM now() - min(l.waitstart)), 3)
              FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) END AS wait_s
  FROM pg_stat_activity a
)
SELECT json_build_object(
  'me', pg_backend_pid(),
  'max_connections', current_setting('max_connections')::int,
  'in_recovery', pg_is_in_recovery(),
  'sessions', (SELECT coalesce(json_agg(a), '[]') FROM warroom_activity a),
  'replicas', CASE WHEN NOT pg_is_in_recovery() THEN (
     SELECT coalesce(json_agg(json_build_object(
       'application_name', r.application_name, 'client_addr', host(r.client_addr), 'state', r.state,
       'sync_state', r.sync_state, 'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn),
       'replay_lag_s', round(extract(epoch FROM r.replay_lag), 3))), '[]')
     FROM pg_stat_replication r) END,
  'received_lsn', pg_last_wal_receive_lsn(),
  'replayed_lsn', pg_last_wal_replay_lsn(),
  'receive_replay_gap_bytes', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()),
  'last_replay_age_s', round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 3),
  'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> 'not paused' END,
  'receiver_status', CASE WHEN pg_is_in_recovery() THEN (SELECT status FROM pg_stat_wal_receiver) END,
  'pgss_schema', (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_stat_statements')
)"""

SLOW_SQL = """SELECT coalesce(json_agg(warroom_top), '[]') FROM (
  SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query, calls,
         round(mean_exec_time::numeric, 2) AS mean_ms, round(total_exec_time::numeric, 1) AS total_ms
  FROM {schema}.pg_stat_statements
  WHERE query NOT LIKE '%warroom\\_%'
  ORDER BY mean_exec_time DESC LIMIT 10) warroom_top"""


def _result(target: str, probe: str, status: Status, summary: str, value: float | None, data: dict[str, Any]) -> ProbeResult:
    # Summaries name the target like every other backend's: "primary: 3 blocked session(s) ..."
    return ProbeResult(target=target, kind=KIND, probe=probe, status=status, summary=f"{target}: {summary}", value=value, data=data)


def _secs(value: float | None) -> str:
    return duration(value, unknown="?")  # `42 s`, `2m05s`: the panes' unit system


def _query(text: str | None) -> str:
    return (text or "")[:QUERY_CHARS]


def owner(session: dict[str, Any]) -> dict[str, Any]:
    """Who a session belongs to: the culprit's user, application and client address."""
    return {"usename": session.get("usename"), "application_name": session.get("application_name"),
            "client_addr": session.get("client_addr")}


def clients(snap: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in snap["sessions"] if s["backend_type"] == "client backend"]


def others(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """Client sessions except warroom's own, which would otherwise show up as 'active'."""
    return [s for s in clients(snap) if s["pid"] != snap["me"]]


def connections(target: str, snap: dict[str, Any], th: Thresholds) -> ProbeResult:
    every = clients(snap)
    rest = others(snap)
    total, limit = len(every), snap["max_connections"]
    usage = total / limit if limit else 0.0
    by_state = dict(Counter(s["state"] or "unknown" for s in every))
    ages = [s["xact_age_s"] for s in rest if s["xact_age_s"] is not None]
    ordered = sorted(rest, key=lambda s: (s["xact_age_s"] is None, -(s["xact_age_s"] or 0), -(s["query_age_s"] or 0)))
    keys = ("pid", "usename", "application_name", "client_addr", "state", "wait_event_type", "wait_event", "xact_age_s", "query_age_s")
    sessions = [{**{k: s[k] for k in keys}, "query": _query(s["query"])} for s in ordered[:MAX_SESSIONS]]
    data = {
        "total": total,
        "max_connections": limit,
        "usage": round(usage, 4),
        "by_state": by_state,
        "waiting": sum(1 for s in rest if s["wait_event_type"] == "Lock"),
        "oldest_xact_age_s": max(ages, default=None),
        "sessions": sessions,
    }
    states = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items(), key=lambda kv: -kv[1]))
    status = grade(usage, th.get("connections", "usage_warn"), th.get("connections", "usage_fail"))
    return _result(target, "connections", status, f"{total}/{limit} connections ({usage:.0%}): {states}", usage, data)


def blocking_chains(snap: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None]:
    """Root blockers (block others, wait on nobody) with everything queued under them."""
    by_pid = {s["pid"]: s for s in snap["sessions"]}
    waits = {s["pid"]: [p for p in (s["blocked_by"] or [])] for s in snap["sessions"] if s["blocked_by"]}
    if not waits:
        return [], None
    under: dict[int, list[int]] = {}
    for pid, blockers in waits.items():
        for blocker in blockers:
            under.setdefault(blocker, []).append(pid)
    roots = [p for p in under if p not in waits]
    if not roots:  # a deadlock cycle with no root: the server resolves it within deadlock_timeout
        roots = [min(waits)]
    chains = []
    for root in sorted(roots):
        seen: list[int] = []
        todo = list(under.get(root, []))
        while todo:
            pid = todo.pop(0)
            if pid not in seen and pid != root:
                seen.append(pid)
                todo.extend(under.get(pid, []))
        info = by_pid.get(root, {})  # pid 0: a prepared transaction holds the lock
        chains.append({
            "blocker_pid": root,
            "state": info.get("state") or ("prepared transaction" if root == 0 else None),
            **owner(info),
            "query": _query(info.get("query")),
            "xact_age_s": info.get("xact_age_s"),
            "blocked": seen,
            "blocked_sessions": [
                {"pid": p, **owner(by_pid[p]), "query": _query(by_pid[p]["query"]), "wait_s": _wait_s(by_pid[p]),
                 "blocked_by": waits.get(p, [])}
                for p in seen if p in by_pid
            ],
        })
    chains.sort(key=lambda c: -len(c["blocked"]))
    return chains, max((_wait_s(by_pid[p]) or 0.0 for p in waits), default=None)


def _wait_s(session: dict[str, Any]) -> float | None:
    # pg_locks.waitstart is filled in a moment after the wait begins; fall back to the query age.
    return session["wait_s"] if session["wait_s"] is not None else session["query_age_s"]


def locks(target: str, snap: dict[str, Any], th: Thresholds) -> ProbeResult:
    chains, max_blocked_s = blocking_chains(snap)
    blocked = {p for c in chains for p in c["blocked"]}
    data = {"chains": chains, "max_blocked_s": max_blocked_s, "blocked_count": len(blocked)}
    if not blocked:
        return _result(target, "locks", Status.OK, "no session is blocked", 0.0, data)
    status = worst([Status.WARN, grade(max_blocked_s, th.get("locks", "blocked_warn_s"), th.get("locks", "blocked_fail_s"))])
    top = chains[0]
    summary = (f"{len(blocked)} blocked session(s), longest {_secs(max_blocked_s)}; "
               f"pid {top['blocker_pid']} ({top['state']}) blocks {len(top['blocked'])}")
    return _result(target, "locks", status, summary, float(len(blocked)), data)


def long_queries(target: str, snap: dict[str, Any], th: Thresholds) -> ProbeResult:
    warn, fail = th.get("long_queries", "warn_s"), th.get("long_queries", "fail_s")
    found = sorted(
        ({"pid": s["pid"], "duration_s": s["query_age_s"], "state": s["state"], **owner(s), "query": _query(s["query"])}
         for s in others(snap) if s["state"] == "active" and (s["query_age_s"] or 0) >= warn),
        key=lambda q: -q["duration_s"],
    )
    if not found:
        return _result(target, "long_queries", Status.OK, f"no query running over {_secs(warn)}", 0.0, {"queries": []})
    status = grade(found[0]["duration_s"], warn, fail)
    summary = f"{len(found)} query(ies) over {_secs(warn)}; longest {_secs(found[0]['duration_s'])} (pid {found[0]['pid']})"
    return _result(target, "long_queries", status, summary, float(len(found)), {"queries": found[:MAX_SESSIONS]})


def idle_in_transaction(target: str, snap: dict[str, Any], th: Thresholds) -> ProbeResult:
    warn, fail = th.get("idle_in_transaction", "warn_s"), th.get("idle_in_transaction", "fail_s")
    found = sorted(
        ({"pid": s["pid"], "idle_s": s["state_age_s"], "xact_age_s": s["xact_age_s"], **owner(s),
          "state": s["state"], "query": _query(s["query"])}
         for s in others(snap) if (s["state"] or "").startswith("idle in transaction") and (s["state_age_s"] or 0) >= warn),
        key=lambda q: -q["idle_s"],
    )
    if not found:
        return _result(target, "idle_in_transaction", Status.OK, f"no session idle in transaction over {_secs(warn)}", 0.0, {"sessions": []})
    status = grade(found[0]["idle_s"], warn, fail)
    summary = f"{len(found)} session(s) idle in transaction; longest {_secs(found[0]['idle_s'])} (pid {found[0]['pid']})"
    return _result(target, "idle_in_transaction", status, summary, float(len(found)), {"sessions": found[:MAX_SESSIONS]})


def replication(target: str, role: str, expect: tuple[str, ...], snap: dict[str, Any], th: Thresholds) -> ProbeResult:
    t = th.of("replication")
    if snap["in_recovery"]:
        return _replica(target, role, snap, t)
    replicas = snap["replicas"] or []
    names = {r["application_name"] for r in replicas}
    missing = [n for n in expect if n not in names]
    lag = max((r["lag_bytes"] or 0 for r in replicas), default=0)
    replay = max((r["replay_lag_s"] or 0 for r in replicas), default=0)
    statuses = [grade(lag, t["lag_bytes_warn"], t["lag_bytes_fail"]), grade(replay, t["replay_lag_s_warn"], t["replay_lag_s_fail"])]
    statuses += [Status.WARN for r in replicas if r["state"] != "streaming"]
    notes = []
    if missing:
        statuses.append(Status.FAIL)
        notes.append(f"missing: {', '.join(missing)}")
    if role == "replica":
        statuses.append(Status.FAIL)
        notes.append("configured as a replica but not in recovery (promoted?)")
    data = {"role": "primary", "replicas": replicas, "missing": missing, "expected": list(expect)}
    if replicas:
        head = f"{len(replicas)} replica(s), max lag {_bytes(lag)}"
    else:
        head = "no replicas connected"
    return _result(target, "replication", worst(statuses), "; ".join([head, *notes]), float(lag), data)


def _replica(target: str, role: str, snap: dict[str, Any], t: dict[str, float]) -> ProbeResult:
    gap = snap["receive_replay_gap_bytes"] or 0
    # With nothing left to replay the replica is current, however old the last transaction is.
    # Behind but with no transaction replayed since it started, how far behind in time is
    # unknown (None), never a false 0.
    delay = snap["last_replay_age_s"] if gap > 0 else 0.0
    statuses = [grade(gap, t["lag_bytes_warn"], t["lag_bytes_fail"]), grade(delay, t["replay_lag_s_warn"], t["replay_lag_s_fail"])]
    notes = [f"replay {_secs(delay)} behind, {_bytes(gap)} received but not replayed"]
    if snap["replay_paused"]:
        statuses.append(Status.WARN)
        notes.insert(0, "replay PAUSED")
    if snap["receiver_status"] != "streaming":
        statuses.append(Status.WARN)
        notes.append(f"WAL receiver {snap['receiver_status'] or 'not running'}")
    if role == "primary":
        statuses.append(Status.FAIL)
        notes.append("configured as a primary but in recovery")
    data = {
        "role": "replica",
        "is_in_recovery": True,
        "replay_paused": bool(snap["replay_paused"]),
        "replay_delay_s": None if delay is None else round(delay, 3),
        "received_lsn": snap["received_lsn"],
        "replayed_lsn": snap["replayed_lsn"],
        "receive_replay_gap_bytes": gap,
        "receiver_status": snap["receiver_status"],
    }
    value = None if delay is None else round(delay, 3)
    return _result(target, "replication", worst(statuses), "; ".join(notes), value, data)


def _bytes(n: float) -> str:
    return size(n)


def slow_statements(target: str, statements: list[dict[str, Any]] | None, th: Thresholds, note: str = "") -> ProbeResult:
    if statements is None:
        summary = note or "pg_stat_statements not installed"
        return _result(target, "slow_statements", Status.OK, summary, None, {"installed": False, "statements": []})
    worst_mean = max((s["mean_ms"] for s in statements), default=0.0)
    status = grade(worst_mean, th.get("slow_statements", "mean_ms_warn"), th.get("slow_statements", "mean_ms_fail"))
    summary = f"slowest mean {duration_ms(worst_mean)} over {len(statements)} top statement(s)" if statements else "no statements recorded"
    return _result(target, "slow_statements", status, summary, float(worst_mean), {"installed": True, "statements": statements})
