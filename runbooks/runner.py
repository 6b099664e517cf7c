"""Running runbook steps: automatic reads, the headless walk along branches, confirmed actions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.config import DockerTarget, Environment
from probes.secrets import redact
from runbooks.classify import classify_sql, tokenize
from runbooks.commands import (
    docker_call,
    docker_words,
    find_target,
    missing_action_credential,
    redis_call,
    target_address,
    unlisted_container,
)
from runbooks.conditions import EvalError, NothingToDo, render, render_text
from runbooks.model import Branch, Runbook, Step
from runbooks.preview import (
    ActionPreview,
    counted,
    listed_pids,
    over_activity,
    preview_sql,
    session_predicate,
    signal,
)
from runbooks.sessions import WalkSessions, shared_session

SQL_MIN_TIMEOUT_S = 5.0
MAX_ROWS = 200


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    MANUAL = "manual"
    SKIPPED = "skipped"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one step did: its status, one line for the operator, the facts, how long it took."""

    step_id: str
    status: Outcome
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    duration_ms: float = 0.0
    timestamp: float = field(default_factory=time.time)
    kind: str = ""

    def names(self) -> dict[str, Any]:
        """What later templates see as `steps.ID`."""
        return {"status": str(self.status), "value": self.value, "data": self.data, "summary": self.summary}

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step_id, "kind": self.kind, "status": str(self.status), "summary": self.summary,
                "value": self.value, "data": self.data, "duration_ms": round(self.duration_ms, 1),
                "timestamp": self.timestamp}


@dataclass
class RunContext:
    """The outcomes so far (for templates) and where to journal them."""

    runbook_id: str = ""
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    journal: Any = None  # runbooks.journal.Journal
    incident_id: int | None = None
    # (kind, target) -> the probe Session reads share (runbooks.sessions); None: one per read
    sessions: Any = None

    def names(self) -> dict[str, Any]:
        return {"steps": {sid: o.names() for sid, o in self.outcomes.items()}}

    def record(self, outcome: StepOutcome, kind: str) -> None:
        self.outcomes[outcome.step_id] = outcome
        if self.journal is not None and self.incident_id is not None:
            self.journal.record_outcome(self.incident_id, self.runbook_id, outcome, kind=kind)


def _outcome(step: Step, status: Outcome, summary: str, started: float, **extra: Any) -> StepOutcome:
    return StepOutcome(step.id, status, redact(summary), duration_ms=(time.perf_counter() - started) * 1000,
                       kind=step.kind, **extra)


async def _read(step: Step, env: Environment, command: str, timeout: float, context: RunContext | None = None) -> dict[str, Any]:
    """Run the step's read; the names its pass condition sees. Raises on failure."""
    kind, target = find_target(env, step.target, step.target_kind)
    session = shared_session(context, kind, target)  # the connection the probes already hold
    if step.block == "probe":
        from probes.registry import collect_target

        results = await collect_target(kind, target, env, timeout=timeout, session=session)
        res = next((r for r in results if r.probe == step.probe), None)
        if res is None:
            raise LookupError(f"{step.target}: the {kind} backend returned no {step.probe!r} reading")
        return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary,
                "target": res.target, "probe": res.probe}
    if step.block == "sql":
        verdict = classify_sql(command)  # again, after the templates were filled
        if not verdict.read_only:
            raise PermissionError(f"not read-only once filled in: {verdict.reason}")
        from probes import postgres

        rows = await postgres.run_readonly_sql(target, command, timeout=max(timeout, SQL_MIN_TIMEOUT_S), session=session)
        rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
        first = rows[0] if rows else None
        return {"status": "ok", "rows": len(rows), "row": first, "value": next(iter(first.values()), None) if first else None,
                "data": {"rows": rows[:MAX_ROWS]}, "summary": f"{len(rows)} row(s)"}
    if step.block == "redis":
        return await redis_call(target, step.words, command, timeout)
    if step.block == "promql":
        from probes import prometheus

        res = await prometheus.query(target, command, probe="promql", timeout=timeout, session=session)
        series = res.data.get("series") or []
        return {"status": str(res.status), "value": res.value, "data": res.data, "summary": res.summary,
                "series": series, "count": res.data.get("count", len(series))}
    return await docker_call(env, target, step.words, command, timeout, read=True)


def _plain(value: Any) -> Any:
    """SQL values as JSON-like data: conditions compare numbers, journals store text."""
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _fill(step: Step, context: RunContext) -> str:
    return render(step.command, context.names()) if "{{" in step.command else step.command


_TARGET_WORDS = {"postgres": "PostgreSQL", "redis": "Redis", "http": "HTTP", "docker": "Docker", "dns": "DNS", "tcp": "TCP"}
_TARGET_WORDS["prometheus"] = "Prometheus"


def not_applicable(step: Step, env: Environment) -> str:
    """Why a step cannot apply to this environment (its target is not configured), or "".

    Such a step is skipped, saying why, and the walk goes on with the next step: a runbook
    written for more targets than a site has still leads somewhere."""
    if not step.target or step.target in env.target_names():
        return ""
    word = _TARGET_WORDS.get(step.target_kind)
    what = "no Docker engine" if step.target_kind == "docker" else f"no {word} target" if word else "no target"
    known = ", ".join(env.target_names()) or "none"
    return f"does not apply here: {what} {step.target!r} in environment {env.name!r} (targets: {known})"


async def run_step(step: Step, env: Environment, *, context: RunContext | None = None, timeout: float | None = None) -> StepOutcome:
    """Run one step's automatic read and grade it; never raises, never runs an action."""
    context = context or RunContext()
    started = time.perf_counter()
    if step.kind == "manual":
        return _outcome(step, Outcome.MANUAL, "manual step: the operator marks it pass, fail or skip", started)
    if step.is_action:
        return _outcome(step, Outcome.REFUSED, "an action only runs through execute_action after a confirmation", started)
    if why := not_applicable(step, env):
        out = _outcome(step, Outcome.SKIPPED, why, started)
        context.record(out, "step")
        return out
    timeout = step.timeout or timeout or env.timeout_s
    try:
        command = _fill(step, context)
        names = await _read(step, env, command, timeout, context)
    except EvalError as exc:
        out = _outcome(step, Outcome.ERROR, f"cannot fill the command: {exc}", started)
    except PermissionError as exc:
        out = _outcome(step, Outcome.REFUSED, str(exc), started)
    except Exception as exc:  # noqa: BLE001 - a failing target is an outcome, never a crash
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        where = "" if text.startswith(f"{step.target}:") else f"{step.target}: "
        out = _outcome(step, Outcome.ERROR, f"{where}{text}", started)
    else:
        out = _grade(step, names, context, started)
    context.record(out, "probe")
    return out


def _grade(step: Step, names: dict[str, Any], context: RunContext, started: float) -> StepOutcome:
    raw = str(names.get("summary") or "")
    # Probe summaries already start with their target ("primary: 3 blocked ..."): say it once.
    summary = raw if raw.startswith(f"{step.target}:") else f"{step.target}: {raw}".rstrip(": ")
    facts = {"data": names.get("data"), "value": names.get("value")}
    if names.get("status") == "error":
        return _outcome(step, Outcome.ERROR, names.get("summary") or summary, started, **facts)
    scope = {**names, **context.names()}
    try:
        report = render_text(step.report, scope) if step.report else ""  # TooExpensive is an error too
        if report:
            summary += f" · {report}"
        passed = step.passes.test(scope) if step.passes else True
    except EvalError as exc:
        return _outcome(step, Outcome.ERROR, f"{summary} (condition could not be evaluated: {exc})", started, **facts)
    status = Outcome.PASS if passed else Outcome.FAIL
    if not passed and step.passes:
        summary += f" (wanted {step.passes.text})"
    return _outcome(step, status, summary, started, **facts)


# --- actions --------------------------------------------------------------------------------

_NO_ARG_VERBS = {"pg_wal_replay_resume": "resume WAL replay", "pg_wal_replay_pause": "pause WAL replay",
                 "pg_reload_conf": "reload the server configuration"}
_VERBS = {"pg_terminate_backend": "terminate backend pid {}", "pg_cancel_backend": "cancel the running query of backend pid {}"}


def describe_action(step: Step, context: RunContext | None = None, env: Environment | None = None) -> str:
    """Exactly what the action will do to which target, for the confirmation dialog.

    Raises EvalError when a template cannot be filled, a Docker action names a container its
    target does not list, or the target has no action credential (action_dsn / action_url): the
    action must then be refused, before any confirmation is asked for.
    """
    where, target = step.target, None
    if env is not None:
        try:
            _, target = find_target(env, step.target, step.target_kind)
            where = f"{step.target} ({target_address(target)})"
        except LookupError:
            pass
    if target is not None and (why := missing_action_credential(target)):
        raise EvalError(f"{step.target}: {why}")
    command = _fill(step, context or RunContext())
    if step.block == "sql":
        try:
            toks = tokenize(command)
        except ValueError:  # not decodable: the dialog shows the SQL itself
            toks = []
        verbs = [_VERBS[t.text].format(toks[i + 2].text) for i, t in enumerate(toks[:-2])
                 if t.kind == "word" and t.text in _VERBS and toks[i + 2].kind == "number"]
        verbs += [_NO_ARG_VERBS[t.text] for t in toks if t.kind == "word" and t.text in _NO_ARG_VERBS]
        if verbs:
            return redact(f"{' and '.join(verbs)} on {where}")
        if (sig := signal(toks)) and (pids := listed_pids(toks)):
            # The pids a `| pids` template filled in: at most these sessions are signalled.
            shown = ", ".join(map(str, pids[:5])) + (f" and {len(pids) - 5} more" if len(pids) > 5 else "")
            noun = "session" if len(pids) == 1 else "sessions"
            return redact(f"{sig[0]} up to {len(pids)} {noun} on {where} (pid{'s' if len(pids) > 1 else ''} {shown})")
        one_line = " ".join(command.split())
        reason = step.classification.reason if step.classification else "not read-only"
        return redact(f"run SQL `{one_line[:300]}` on {where} ({reason})")
    if step.block == "docker":
        words = docker_words(command)  # "DOCKER RESTART web" is "restart web"
        # Refused before any confirmation; docker_call refuses it too.
        if isinstance(target, DockerTarget) and (outside := unlisted_container(target, words[1])):
            raise EvalError(outside)
        return f"{words[0]} container {words[1]} on Docker engine {where}"
    return redact(f"run Redis command `{' '.join(command.split())[:300]}` on {where}")


async def preview_action(step: Step, context: RunContext | None = None, env: Environment | None = None, *,
                         timeout: float | None = None) -> ActionPreview | None:
    """The sessions a terminate / cancel action will reach, counted now with a plain read of
    the same predicate (on the read connection, only when the classifier calls it a read), for
    the confirmation: "terminate 36 sessions on primary (...): 4711 shop idle 2m08s, ...".

    None for an action that signals no session or whose shape is not understood (the dialog
    then shows describe_action's line). Raises EvalError as describe_action does, and
    NothingToDo when no session matches any more; a failed count is a preview with a note."""
    what = describe_action(step, context, env)
    if step.block != "sql" or env is None:
        return None
    context = context or RunContext()
    command = _fill(step, context)
    try:
        sig = signal(tokenize(command))
    except ValueError:
        return None
    predicate = session_predicate(command) if sig else None
    if sig is None or predicate is None:
        return None
    sql = preview_sql(predicate)
    if sql is None:
        return ActionPreview(what, note="its sessions cannot be counted beforehand: the condition is not a plain read")
    kind, target = find_target(env, step.target, step.target_kind)
    from probes import postgres

    try:
        rows = await postgres.run_readonly_sql(target, sql, timeout=max(timeout or env.timeout_s, SQL_MIN_TIMEOUT_S),
                                               session=shared_session(context, kind, target))
    except postgres.SqlError as exc:
        return ActionPreview(what, note=f"could not count its sessions beforehand: {exc}")
    if not rows:
        raise NothingToDo("nothing to do: no session it names is still there in that state")
    where = f"{step.target} ({target_address(target)})"
    return counted(sig[0], redact(where), [{k: _plain(v) for k, v in r.items()} for r in rows], capped=len(rows) >= postgres.MAX_ROWS)


async def execute_action(step: Step, env: Environment, *, context: RunContext | None = None, confirmed: bool, read_only: bool, timeout: float | None = None) -> StepOutcome:
    """Run an action only when confirmed and not read-only; everything is journaled."""
    context = context or RunContext()
    started = time.perf_counter()
    if not step.is_action:
        return _outcome(step, Outcome.REFUSED, "not an action step", started)
    try:
        description = describe_action(step, context, env)
    except EvalError as exc:
        out = _outcome(step, Outcome.REFUSED, f"refused: {exc}", started)
        context.record(out, "action-declined")
        return out
    if read_only or not confirmed:
        why = "read-only mode" if read_only else "declined by the operator"
        out = _outcome(step, Outcome.REFUSED, f"not done ({why}): {description}", started)
        context.record(out, "action-declined")
        return out
    timeout = step.timeout or timeout or env.timeout_s
    try:
        command = _fill(step, context)
        kind, target = find_target(env, step.target, step.target_kind)
        if step.block == "sql":
            from probes import postgres

            rows = await postgres.run_action_sql(target, command, timeout=max(timeout, SQL_MIN_TIMEOUT_S))
            rows = [{k: _plain(v) for k, v in r.items()} for r in rows or []]
            value = next(iter(rows[0].values()), None) if rows else None
            result = {"data": {"rows": rows[:MAX_ROWS]}, "value": value}
            if value is False:  # pg_terminate_backend() returns false when the pid is gone
                out = _outcome(step, Outcome.FAIL, f"{description}: returned false (already gone?)", started, **result)
                context.record(out, "action")
                return out
            if (sig := signal(tokenize(command))) and over_activity(command):
                # A terminate / cancel over pg_stat_activity: one row per session it reached.
                done = sum(1 for r in rows if any(v is True for v in r.values()))
                if not done:
                    out = _outcome(step, Outcome.FAIL, f"{description}: reached no session (already gone?)", started, **result)
                    context.record(out, "action")
                    return out
                description += f": {done} of {len(rows)} session{'s' if len(rows) != 1 else ''} {sig[1]}"
        elif step.block == "redis":
            result = await redis_call(target, step.words, command, timeout, read=False)
        else:
            result = await docker_call(env, target, step.words, command, max(timeout, 15.0), read=False)
    except Exception as exc:  # noqa: BLE001 - reported to the operator, never raised to the UI
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        out = _outcome(step, Outcome.ERROR, f"{description}: failed: {text}", started)
    else:
        out = _outcome(step, Outcome.PASS, f"done: {description}", started, data=result.get("data") or {}, value=result.get("value"))
    context.record(out, "action")
    return out


# --- headless -------------------------------------------------------------------------------


@dataclass
class RunReport:
    runbook: Runbook
    outcomes: list[StepOutcome]
    notes: list[str] = field(default_factory=list)
    handover: str = ""  # the runbook the walk ended by handing over to (`goto runbook:ID`)

    @property
    def ok(self) -> bool:
        """Every automatic step that ran passed (manual, refused and skipped do not count)."""
        auto = {s.id for s in self.runbook.automatic_steps}
        return all(o.status == Outcome.PASS for o in self.outcomes if o.step_id in auto and o.status != Outcome.SKIPPED)

    def to_json(self) -> dict[str, Any]:
        return {"runbook": self.runbook.id, "ok": self.ok, "notes": self.notes, "handover": self.handover or None,
                "steps": [o.to_json() for o in self.outcomes]}


async def run_runbook(runbook: Runbook, env: Environment, *, read_only: bool = True, context: RunContext | None = None,
                      on_outcome: Callable[[StepOutcome], Awaitable[None] | None] | None = None,
                      timeout: float | None = None) -> RunReport:
    """Walk the runbook headless: reads run, manual steps wait, actions are refused; bounded.

    Steps that do not apply to `env` (target not configured) are skipped and the walk goes on
    with the next step. A hand-over (`goto runbook:ID`) ends the walk: `report.handover` and a
    note name the runbook to run next."""
    context = context or RunContext(runbook.id)
    if context.sessions is None:
        # Headless: one connection per target for the whole walk, not one per step.
        context.sessions = sessions = WalkSessions()
        try:
            return await run_runbook(runbook, env, read_only=read_only, context=context, on_outcome=on_outcome, timeout=timeout)
        finally:
            context.sessions = None
            await sessions.aclose()
    context.runbook_id = context.runbook_id or runbook.id
    position = {s.id: i for i, s in enumerate(runbook.steps)}
    report = RunReport(runbook, [])
    visited: set[str] = set()

    async def emit(outcome: StepOutcome) -> None:
        report.outcomes.append(outcome)
        if on_outcome is not None:
            maybe = on_outcome(outcome)
            if maybe is not None:
                await maybe

    async def skip(lo: int, hi: int, why: str) -> None:
        for s in runbook.steps[lo:hi]:
            if s.id not in visited:
                visited.add(s.id)
                out = StepOutcome(s.id, Outcome.SKIPPED, why, kind=s.kind)
                context.record(out, "step")
                await emit(out)

    index = 0
    # Each step runs at most once, so the walk ends after at most len(steps) steps.
    while index < len(runbook.steps):
        step = runbook.steps[index]
        visited.add(step.id)
        if step.automatic:
            out = await run_step(step, env, context=context, timeout=timeout)
        else:
            started = time.perf_counter()
            if step.is_action and (why := not_applicable(step, env)):
                out = _outcome(step, Outcome.SKIPPED, why, started)
            elif step.is_action:
                why = "read-only" if read_only else "headless"
                try:
                    out = _outcome(step, Outcome.REFUSED, f"action not run ({why}): would {describe_action(step, context, env)}", started)
                except EvalError as exc:
                    out = _outcome(step, Outcome.REFUSED, f"action not run ({why}); it cannot be filled in yet: {exc}", started)
            else:
                out = _outcome(step, Outcome.MANUAL, "manual step: needs the operator", started)
            context.record(out, "step")
        await emit(out)
        # Manual steps and refused actions follow on_pass: the walk shows the path an operator
        # completing them would take, instead of falling into the next alternative section.
        # A step that does not apply here goes on with the next one, as an operator's skip does.
        if out.status == Outcome.SKIPPED:
            branch = Branch()
        else:
            branch = step.on_fail if out.status in (Outcome.FAIL, Outcome.ERROR) else step.on_pass
        if branch.action == "next":
            index += 1
        elif branch.action == "stop":
            report.notes.append(f"stopped after {step.id} ({out.status})")
            break
        elif branch.action == "runbook":
            report.handover = branch.target
            report.notes.append(f"{step.id} hands over to runbook {branch.target}: "
                                f"continue with `warroom runbook run {branch.target}`")
            break
        else:
            target = position[branch.target]
            if branch.target in visited:
                report.notes.append(f"{step.id}: goto {branch.target} would repeat a step; run ended")
                break
            if target > index:
                await skip(index + 1, target, f"not on this path (jumped from {step.id} to {branch.target})")
            index = target
    await skip(0, len(runbook.steps), "not reached")
    return report
