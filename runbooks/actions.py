"""Runbook actions: what one will do (for the confirmation), the sessions it reaches, and running
it only when confirmed and not read-only, with its target's own credential; all journaled."""

from __future__ import annotations

import time
from typing import Any

from probes.config import DockerTarget, Environment, HttpTarget
from probes.secrets import redact
from runbooks.classify import tokenize
from runbooks.commands import (
    docker_call,
    docker_words,
    find_target,
    missing_action_credential,
    redis_call,
    target_address,
    unlisted_container,
)
from runbooks.conditions import EvalError, NothingToDo, render_text
from runbooks.http_block import RequestError, parse_request
from runbooks.model import Step
from runbooks.outcome import Outcome, RunContext, StepOutcome, fill, first_line, step_outcome
from runbooks.preview import (
    ActionPreview,
    counted,
    listed_pids,
    over_activity,
    preview_sql,
    session_predicate,
    signal,
)
from runbooks.reads import MAX_ROWS, SQL_MIN_TIMEOUT_S, plain
from runbooks.sessions import shared_session

_NO_ARG_VERBS = {"pg_wal_replay_resume": "resume WAL replay", "pg_wal_replay_pause": "pause WAL replay",
                 "pg_reload_conf": "reload the server configuration"}
_VERBS = {"pg_terminate_backend": "terminate backend pid {}", "pg_cancel_backend": "cancel the running query of backend pid {}"}


def describe_action(step: Step, context: RunContext | None = None, env: Environment | None = None) -> str:
    """Exactly what the action will do to which target, for the confirmation dialog.

    Raises EvalError when a template cannot be filled, a Docker action names a container its
    target does not list, an HTTP action's URL leaves its target's origin, or the target has no
    action credential (action_dsn / action_url / action_headers_env): the action must then be
    refused, before any confirmation is asked for.
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
    command = fill(step, context or RunContext())
    if step.block == "sql":
        return _describe_sql(step, command, where)
    if step.block == "docker":
        words = docker_words(command)  # "DOCKER RESTART web" is "restart web"
        # Refused before any confirmation; docker_call refuses it too.
        if isinstance(target, DockerTarget) and (outside := unlisted_container(target, words[1])):
            raise EvalError(outside)
        return f"{words[0]} container {words[1]} on Docker engine {where}"
    if step.block == "http":
        return _describe_http(step, command, target)
    return redact(f"run Redis command `{' '.join(command.split())[:300]}` on {where}")


def _describe_sql(step: Step, command: str, where: str) -> str:
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


def _describe_http(step: Step, command: str, target: Any) -> str:
    from runbooks.http_action import describe

    try:
        request = parse_request(command)  # filled in: checked again
    except RequestError as exc:
        raise EvalError(f"the request is not valid once filled in: {exc}") from None
    if target is None:  # no environment at hand: what the block says
        return redact(f"send {request.method} {request.target} ({request.body_words()}) to {step.target}")
    try:
        return describe(request, target, step.target)
    except ValueError as exc:  # a full URL off the target's origin
        raise EvalError(str(exc)) from None


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
    command = fill(step, context)
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
    return counted(sig[0], redact(where), [{k: plain(v) for k, v in r.items()} for r in rows], capped=len(rows) >= postgres.MAX_ROWS)


async def execute_action(step: Step, env: Environment, *, context: RunContext | None = None, confirmed: bool, read_only: bool, timeout: float | None = None) -> StepOutcome:
    """Run an action only when confirmed and not read-only; everything is journaled."""
    context = context or RunContext()
    started = time.perf_counter()
    if not step.is_action:
        return step_outcome(step, Outcome.REFUSED, "not an action step", started)
    try:
        description = describe_action(step, context, env)
    except EvalError as exc:
        out = step_outcome(step, Outcome.REFUSED, f"refused: {exc}", started)
        context.record(out, "action-declined")
        return out
    if read_only or not confirmed:
        why = "read-only mode" if read_only else "declined by the operator"
        out = step_outcome(step, Outcome.REFUSED, f"not done ({why}): {description}", started)
        context.record(out, "action-declined")
        return out
    timeout = step.timeout or timeout or env.timeout_s
    try:
        command = fill(step, context)
        _, target = find_target(env, step.target, step.target_kind)
        out = await _act(step, env, target, command, description, context, timeout, started)
    except Exception as exc:  # noqa: BLE001 - reported to the operator, never raised to the UI
        out = step_outcome(step, Outcome.ERROR, f"{description}: failed: {first_line(exc)}", started)
    context.record(out, "action")
    return out


async def _act(step: Step, env: Environment, target: Any, command: str, description: str, context: RunContext,
               timeout: float, started: float) -> StepOutcome:
    """Run the confirmed action of its kind; its outcome (raises when the call fails)."""
    if step.block == "sql":
        return await _sql_action(step, target, command, description, timeout, started)
    if step.block == "http" and isinstance(target, HttpTarget):
        from runbooks.http_action import ACTION_MIN_TIMEOUT_S

        return await _http_action(step, target, command, description, context,
                                  step.timeout or max(timeout, ACTION_MIN_TIMEOUT_S), started)
    if step.block == "redis":
        result = await redis_call(target, step.words, command, timeout, read=False)
    else:
        result = await docker_call(env, target, step.words, command, max(timeout, 15.0), read=False)
    return step_outcome(step, Outcome.PASS, f"done: {description}", started, data=result.get("data") or {}, value=result.get("value"))


async def _sql_action(step: Step, target: Any, command: str, description: str, timeout: float, started: float) -> StepOutcome:
    from probes import postgres

    rows = await postgres.run_action_sql(target, command, timeout=max(timeout, SQL_MIN_TIMEOUT_S))
    rows = [{k: plain(v) for k, v in r.items()} for r in rows or []]
    value = next(iter(rows[0].values()), None) if rows else None
    result = {"data": {"rows": rows[:MAX_ROWS]}, "value": value}
    if value is False:  # pg_terminate_backend() returns false when the pid is gone
        return step_outcome(step, Outcome.FAIL, f"{description}: returned false (already gone?)", started, **result)
    if (sig := signal(tokenize(command))) and over_activity(command):
        # A terminate / cancel over pg_stat_activity: one row per session it reached.
        done = sum(1 for r in rows if any(v is True for v in r.values()))
        if not done:
            return step_outcome(step, Outcome.FAIL, f"{description}: reached no session (already gone?)", started, **result)
        description += f": {done} of {len(rows)} session{'s' if len(rows) != 1 else ''} {sig[1]}"
    return step_outcome(step, Outcome.PASS, f"done: {description}", started, **result)


async def _http_action(step: Step, target: HttpTarget, command: str, description: str, context: RunContext,
                       timeout: float, started: float) -> StepOutcome:
    """Send the HTTP action once; pass when its answer meets `pass` (default: a 2xx status)."""
    from runbooks.http_action import send_action

    names = await send_action(target, parse_request(command), step.target, timeout)
    summary = f"{description}: {names['summary']}"
    facts = {"data": names["data"], "value": names["value"]}
    scope = {**names, **context.names()}
    try:
        if step.report and (report := render_text(step.report, scope)):
            summary += f" · {report}"
        passed = step.passes.test(scope) if step.passes else names["status"] == "ok"
    except EvalError as exc:
        return step_outcome(step, Outcome.ERROR, f"{summary} (condition could not be evaluated: {exc})", started, **facts)
    if passed:
        return step_outcome(step, Outcome.PASS, f"done: {summary}", started, **facts)
    wanted = f" (wanted {step.passes.text})" if step.passes else ""
    return step_outcome(step, Outcome.FAIL, f"{summary}{wanted}", started, **facts)
