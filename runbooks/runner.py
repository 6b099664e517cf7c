"""Running runbook steps: automatic reads graded, the headless walk along branches.

Reads per kind are in runbooks.reads, confirmed actions in runbooks.actions; both are
re-exported here, where the cockpit and the CLI look for them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from probes.config import Environment
from runbooks.actions import describe_action, execute_action, preview_action
from runbooks.conditions import EvalError, render_text
from runbooks.model import Branch, Runbook, Step
from runbooks.outcome import Outcome, RunContext, StepOutcome, fill, first_line
from runbooks.outcome import step_outcome as _outcome
from runbooks.reads import MAX_ROWS, SQL_MIN_TIMEOUT_S, read
from runbooks.sessions import WalkSessions

__all__ = ["MAX_ROWS", "SQL_MIN_TIMEOUT_S", "Outcome", "RunContext", "RunReport", "StepOutcome", "describe_action",
           "execute_action", "not_applicable", "preview_action", "run_runbook", "run_step"]


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
        command = fill(step, context)
        names = await read(step, env, command, timeout, context)
    except EvalError as exc:
        out = _outcome(step, Outcome.ERROR, f"cannot fill the command: {exc}", started)
    except PermissionError as exc:
        out = _outcome(step, Outcome.REFUSED, str(exc), started)
    except Exception as exc:  # noqa: BLE001 - a failing target is an outcome, never a crash
        text = first_line(exc)
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
