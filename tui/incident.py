"""The cockpit's incident: one journal incident per session (or resumed) and each runbook's checklist state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.config import Environment
from probes.secrets import redact
from runbooks.model import Runbook, Step
from runbooks.preview import ActionPreview, over_activity
from runbooks.runner import (
    SQL_MIN_TIMEOUT_S,
    Outcome,
    RunContext,
    StepOutcome,
    describe_action,
    execute_action,
    not_applicable,
    preview_action,
    run_step,
)

# Beyond a step's own timeout, the time the UI waits before it calls the step hung: the
# runner enforces timeouts itself; this only catches a driver that does not.
GRACE_S = 1.0
MARKS = {"pass": "pass", "fail": "fail", "skip": "skipped"}
Listener = Callable[[str], None]
StepRunner = Callable[..., Awaitable[StepOutcome]]


@dataclass(frozen=True, slots=True)
class Handover:
    """Where a step's branch leads when it is `goto runbook:ID`: another runbook."""

    runbook_id: str
    step_id: str  # the step it was reached from


@dataclass
class StepState:
    """What the checklist shows for one step."""

    status: str = "pending"  # pending running pass fail error manual skipped refused
    summary: str = ""
    duration_ms: float | None = None
    ts: float | None = None
    notes: list[str] = field(default_factory=list)
    kind: str = ""  # journal event kind of the latest outcome (probe / manual / action / ...)


class RunbookRun:
    """One runbook inside the incident: its step states, the outcomes templates see, and the
    operations the screens call. Screens subscribe with `listen` and redraw a step by id."""

    def __init__(self, runbook: Runbook, env: Environment, incident: IncidentLog | None = None, *,
                 read_only: bool = False, runner: StepRunner = run_step, actor: StepRunner = execute_action) -> None:
        self.runbook = runbook
        self.env = env
        self.incident = incident
        self.read_only = read_only
        self.context = RunContext(runbook.id)
        self.states: dict[str, StepState] = {s.id: StepState(kind="") for s in runbook.steps}
        self._runner, self._actor = runner, actor
        self.last_action_ts = 0.0  # results older than the last action run describe the past
        self._listeners: list[Listener] = []

    # --- observers -----------------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, step_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(step_id)
            except Exception:  # noqa: BLE001 - a screen going away must not stall the run
                self.unlisten(listener)

    def apply(self, outcome: StepOutcome, kind: str = "probe") -> None:
        """Show an outcome (the journal got it through the RunContext already)."""
        self.context.outcomes[outcome.step_id] = outcome
        state = self.states.setdefault(outcome.step_id, StepState())
        state.status, state.summary = str(outcome.status), outcome.summary
        state.duration_ms, state.ts, state.kind = outcome.duration_ms, outcome.timestamp, kind
        self._changed(outcome.step_id)

    def _journal(self) -> tuple[Any, int | None]:
        if self.incident is None:
            return None, None
        return self.incident.journal_for(self.runbook.id)

    def _bind_context(self) -> None:
        self.context.journal, self.context.incident_id = self._journal()

    # --- steps ---------------------------------------------------------------------------

    def budget_s(self, step: Step) -> float:
        timeout = step.timeout or self.env.timeout_s
        if step.block == "sql":
            timeout = max(timeout, SQL_MIN_TIMEOUT_S)
        return timeout + GRACE_S

    async def run(self, step: Step) -> StepOutcome | None:
        """Run one automatic step (never an action); None when it was already running."""
        state = self.states[step.id]
        if state.status == "running" or not step.automatic:
            return None
        previous = StepState(state.status, state.summary, state.duration_ms, state.ts, state.notes, state.kind)
        state.status, state.summary = "running", f"running (timeout {self.budget_s(step) - GRACE_S:g}s)"
        self._changed(step.id)
        self._bind_context()
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(self._runner(step, self.env, context=self.context), self.budget_s(step))
        except TimeoutError:
            outcome = StepOutcome(step.id, Outcome.ERROR, f"{step.target}: timed out after {self.budget_s(step) - GRACE_S:g}s (hung or unreachable?)",
                                  duration_ms=(time.perf_counter() - started) * 1000, kind=step.kind,
                                  data={"own_error": "the step outlived its own timeout"})  # warroom's, not the target's
            self.context.record(outcome, "probe")
        except asyncio.CancelledError:
            self.states[step.id] = previous  # the screen went away: nothing was learned
            self._changed(step.id)
            raise
        self.apply(outcome, "probe")
        return outcome

    def next_step(self, step: Step) -> Step | Handover | str | None:
        """Where the branch rules lead from `step` given its status: a Step, a Handover to
        another runbook, "stop", or None (the end)."""
        status = self.states[step.id].status
        if step.is_action and status in ("pending", "refused", "error", "fail"):
            branch = step.on_fail if status in ("error", "fail") else step.on_pass
        elif status in ("fail", "error"):
            branch = step.on_fail
        elif status == "skipped":
            branch = None
        else:
            branch = step.on_pass
        if branch is not None and branch.action == "stop":
            return "stop"
        if branch is not None and branch.action == "goto":
            return self.runbook.step(branch.target)
        if branch is not None and branch.action == "runbook":
            return Handover(branch.target, step.id)
        following = step.index + 1
        return self.runbook.steps[following] if following < len(self.runbook.steps) else None

    async def run_all(self, on_step: Listener | None = None) -> list[str]:
        """Walk like `run_runbook`: reads run, manual steps and actions wait for the operator
        (their path is taken as if passed), steps off the path show skipped. Bounded: each
        step at most once."""
        visited: list[str] = []
        step: Step | Handover | str | None = self.runbook.steps[0] if self.runbook.steps else None
        while isinstance(step, Step) and step.id not in visited:  # a hand-over waits for the operator
            visited.append(step.id)
            if on_step is not None:
                on_step(step.id)
            if step.automatic:
                await self.run(step)
            elif step.is_action:
                self.not_applicable(step)
            elif self.states[step.id].status == "pending" and step.kind == "manual":
                self.states[step.id].status = "manual"
                handover = step.on_pass.handover
                self.states[step.id].summary = (f"hands over to runbook {handover}: Enter opens it" if handover
                                                else "needs the operator: p pass, f fail, s skip")
                self._changed(step.id)
            step = self.next_step(step)
        for other in self.runbook.steps:
            state = self.states[other.id]
            if other.id not in visited and state.status in ("pending", "manual"):
                state.status, state.summary = "skipped", "not on this path"
                self._changed(other.id)
        return visited

    def not_applicable(self, step: Step) -> str:
        """Why a step cannot apply here (its target is not configured), or "". The first time,
        a pending step shows skipped with that reason (journaled), so the walk goes on past it."""
        why = not_applicable(step, self.env)
        state = self.states[step.id]
        if why and state.status == "pending":
            outcome = StepOutcome(step.id, Outcome.SKIPPED, why, kind=step.kind)
            self._bind_context()
            self.context.record(outcome, "step")
            self.apply(outcome, "step")
        return why

    def hand_over(self, handover: Handover) -> None:
        """The operator follows a hand-over: journaled, and the step says where it led."""
        journal, incident_id = self._journal()
        summary = f"{self.runbook.id} step {handover.step_id} hands over to runbook {handover.runbook_id}"
        if journal is not None and incident_id is not None:
            journal.record(incident_id, "run", runbook_id=self.runbook.id, step_id=handover.step_id,
                           status="handed over", summary=summary)
        state = self.states[handover.step_id]
        if state.status in ("pending", "manual"):  # a read keeps its result; a manual step says where it led
            state.status, state.summary, state.ts = "manual", f"handed over to runbook {handover.runbook_id}", time.time()
            self._changed(handover.step_id)

    def mark(self, step: Step, mark: str) -> None:
        """The operator's verdict on a manual step: pass, fail or skip."""
        status = MARKS[mark]
        journal, incident_id = self._journal()
        if journal is not None and incident_id is not None:
            journal.mark(incident_id, self.runbook.id, step.id, status)
        state = self.states[step.id]
        state.status, state.summary, state.ts, state.kind = status, f"marked {status} by the operator", time.time(), "manual"
        state.duration_ms = None
        self._changed(step.id)

    def note(self, step: Step, text: str) -> None:
        text = redact(text.strip())
        if not text:
            return
        journal, incident_id = self._journal()
        if journal is not None and incident_id is not None:
            journal.note(incident_id, text, runbook_id=self.runbook.id, step_id=step.id)
        self.states[step.id].notes.append(text)
        self._changed(step.id)

    # --- actions -------------------------------------------------------------------------

    def describe(self, step: Step) -> str:
        """What the action will do to which target; raises EvalError when it cannot be filled."""
        return describe_action(step, self.context, self.env)

    async def preview(self, step: Step) -> ActionPreview | None:
        """The sessions the action will reach, counted now (runbooks.runner.preview_action)."""
        return await preview_action(step, self.context, self.env)

    def previewer(self, step: Step) -> Callable[[], Awaitable[ActionPreview | None]] | None:
        """What the confirmation calls to count the action's sessions; None without live probes
        (fixed readings: snapshots, screenshots), whose connection the count would share."""
        if self.context.sessions is None or step.block != "sql":
            return None
        return lambda: self.preview(step)

    def counts_first(self, step: Step) -> bool:
        """Whether the action picks its sessions by a condition, so only counting says how many."""
        return step.block == "sql" and over_activity(self.filled_command(step))

    def filled_command(self, step: Step) -> str:
        """The command with earlier results filled in (as written when they are missing)."""
        from runbooks.conditions import EvalError, render

        try:
            return redact(render(step.command, self.context.names()) if "{{" in step.command else step.command)
        except EvalError:
            return step.command

    async def act(self, step: Step, *, confirmed: bool) -> StepOutcome:
        """Run (or decline) an action; journaled as action / action-declined by the runner."""
        self._bind_context()
        if confirmed and not self.read_only:
            state = self.states[step.id]
            state.status, state.summary = "running", "running the confirmed action"
            self._changed(step.id)
        done_before = self.context.outcomes.get(step.id)
        outcome = await self._actor(step, self.env, context=self.context, confirmed=confirmed, read_only=self.read_only)
        if confirmed and not self.read_only:
            self.last_action_ts = outcome.timestamp
        elif done_before is not None and str(done_before.status) == "pass":
            # Asked again and declined: the action still ran the first time. The journal has the
            # decline; the step keeps saying "done", never "not done" for a change that was made.
            self.context.outcomes[step.id] = done_before
            state = self.states[step.id]
            if "(asked again, declined)" not in state.summary:
                state.summary = f"{done_before.summary} (asked again, declined)"
            self._changed(step.id)
            return outcome
        self.apply(outcome, "action" if confirmed and not self.read_only else "action-declined")
        return outcome

    # --- resume --------------------------------------------------------------------------

    def restore(self, events: list[Any]) -> None:
        """Rebuild statuses, notes and the outcomes templates need from journal events."""
        for ev in events:
            if ev.runbook_id != self.runbook.id or ev.step_id not in self.states:
                continue
            state = self.states[ev.step_id]
            if ev.kind == "note":
                state.notes.append(ev.summary)
                continue
            if ev.kind == "run":
                continue
            state.status, state.summary, state.ts, state.kind = ev.status, ev.summary, ev.ts, ev.kind
            state.duration_ms = ev.duration_ms
            if ev.kind in ("probe", "action"):
                data = ev.data or {}
                self.context.outcomes[ev.step_id] = StepOutcome(
                    ev.step_id, Outcome(ev.status), ev.summary, data=data.get("data") or {}, value=data.get("value"),
                    duration_ms=ev.duration_ms or 0.0, timestamp=ev.ts)


class IncidentLog:
    """The cockpit session's incident in the journal, started at the first alarm (see
    tui.symptoms) or, failing that, when the first runbook is opened; closed by the operator.

    The journal is optional: when it cannot be opened the checklist still works and the
    screens say so (`problem`).
    """

    def __init__(self, env: Environment, *, read_only: bool = False, journal: Any = None, use_journal: bool = True) -> None:
        self.env = env
        self.read_only = read_only
        self.journal = journal
        self.use_journal = use_journal
        self.incident_id: int | None = None
        self.problem = ""
        self.runs: dict[str, RunbookRun] = {}
        self._events: list[Any] = []
        self.sessions: Any = None  # (kind, target) -> the probe session runbook reads share

    def _open(self) -> Any:
        if self.journal is None and self.use_journal and not self.problem:
            try:
                from runbooks.journal import Journal

                self.journal = Journal()
            except Exception as exc:  # noqa: BLE001 - an unwritable journal must not stop the diagnosis
                self.problem = redact(f"journal unavailable: {exc}")
        return self.journal

    def resume(self) -> Any:
        """Reopen the last incident; its events restore each runbook's checklist. None if none."""
        journal = self._open()
        last = journal.last_incident() if journal is not None else None
        if last is not None:
            self.incident_id = last.id
            journal.reopen_incident(last.id)  # resuming a closed incident opens it again
            self._events = journal.events(last.id)
        return last

    def journal_for(self, runbook_id: str) -> tuple[Any, int | None]:
        journal = self._open()
        if journal is None:
            return None, None
        if self.incident_id is None:  # no alarm seen yet: the runbook opened names it
            self.incident_id = journal.start_incident(self.env.name, [runbook_id], title=f"{runbook_id} on {self.env.name}")
        else:
            journal.add_runbook(self.incident_id, runbook_id)
        return journal, self.incident_id

    def run_for(self, runbook: Runbook) -> RunbookRun:
        run = self.runs.get(runbook.id)
        if run is None:
            run = self.runs[runbook.id] = RunbookRun(runbook, self.env, self, read_only=self.read_only)
            run.context.sessions = self.sessions
            run.restore(self._events)
        return run

    def opened(self, runbook: Runbook, mode: str) -> None:
        journal, incident_id = self.journal_for(runbook.id)
        if journal is not None and incident_id is not None:
            journal.record(incident_id, "run", runbook_id=runbook.id, status="opened",
                           summary=f"{runbook.id} opened in {mode} mode{' (read-only)' if self.read_only else ''}")

    # --- alarms and the end of the incident (fed by tui.symptoms.SymptomWatch) ------------

    def alarm(self, result: Any) -> int | None:
        """The first reading that is not ok: the incident starts then, titled from it."""
        journal = self._open()
        if journal is None:
            return None
        if self.incident_id is None:
            self.incident_id = journal.start_incident(self.env.name, [], title=result.summary, started_at=result.timestamp)
        return self.incident_id

    def symptom(self, where: str, seen: Any) -> None:
        """A symptom appeared or changed state (warn / fail / error): tui.symptoms.Seen."""
        if self.journal is None or self.incident_id is None:
            return
        data = {"where": where, "first_seen": seen.first}
        if (result := seen.result) is not None:
            data |= {"target": result.target, "probe": result.probe, "value": result.value}
        self.journal.record(self.incident_id, "symptom", step_id="", status=seen.status, summary=seen.summary,
                            data=data, ts=seen.last)

    def symptom_end(self, where: str, seen: Any, how: str, ts: float | None = None) -> None:
        """A symptom cleared, or is still seen as the cockpit stops / the incident closes."""
        if self.journal is None or self.incident_id is None:
            return
        self.journal.record(self.incident_id, "symptom-end", status=how, summary=f"{where}: {how} (last seen: {seen.summary})",
                            data={"where": where, "first_seen": seen.first, "last_seen": seen.last}, ts=ts)

    def own_error(self, where: str, seen: Any) -> None:
        if self.journal is not None and self.incident_id is not None:
            self.journal.record(self.incident_id, "warroom-error", status="error", summary=seen.summary,
                                data={"where": where, "own_error": True}, ts=seen.last)

    def close_incident(self, resolution: str, still: Sequence[tuple[str, Any]] = ()) -> int | None:
        """The operator closes the incident with a one-line resolution; what is still wrong is
        recorded as such. The next alarm (or runbook) starts a new incident."""
        journal = self._open()
        incident_id = self.incident_id
        if journal is None or incident_id is None:
            return None
        for where, seen in still:
            self.symptom_end(where, seen, "still seen at close")
        journal.close_incident(incident_id, "resolved", resolution)
        self.incident_id, self.runs, self._events = None, {}, []
        return incident_id

    def close(self, still: Sequence[tuple[str, Any]] = ()) -> None:
        if self.journal is not None:
            for where, seen in still:  # the cockpit stops: the last sighting of what is still wrong
                self.symptom_end(where, seen, "still seen at exit")
            self.journal.close()
            self.journal = None
