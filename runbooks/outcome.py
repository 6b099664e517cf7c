"""What a runbook step did (StepOutcome), the run's context for templates and the journal."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.secrets import redact
from runbooks.conditions import render
from runbooks.model import Step


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


def step_outcome(step: Step, status: Outcome, summary: str, started: float, **extra: Any) -> StepOutcome:
    """An outcome of `step` timed from `started` (perf_counter), its summary redacted."""
    return StepOutcome(step.id, status, redact(summary), duration_ms=(time.perf_counter() - started) * 1000,
                       kind=step.kind, **extra)


def fill(step: Step, context: RunContext) -> str:
    """The step's command with earlier results filled in (EvalError when one is missing)."""
    return render(step.command, context.names()) if "{{" in step.command else step.command


def first_line(exc: BaseException) -> str:
    """An exception as one short line for the operator."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
