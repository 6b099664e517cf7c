"""The runbook model: runbooks, steps, branches and triggers (plain data, no UI, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runbooks.classify import Classification
from runbooks.conditions import Condition

StepKind = Literal["manual", "probe", "sql", "redis", "docker", "promql", "http", "action"]
SEVERITIES = ("critical", "high", "medium", "low", "info")

# Which backend kind produces each probe name (kept static so loading never imports drivers).
PROBE_KINDS: dict[str, str] = {
    "connections": "postgres", "locks": "postgres", "replication": "postgres",
    "long_queries": "postgres", "idle_in_transaction": "postgres", "slow_statements": "postgres",
    "ping": "redis", "memory": "redis", "clients": "redis", "queues": "redis", "memory_top": "redis",
    "http": "http", "containers": "docker", "dns": "dns", "tcp": "tcp",
}
# The backend kind a command block needs its target to be.
BLOCK_KINDS = {"sql": "postgres", "redis": "redis", "docker": "docker"}
DEFAULT_PASS = {"probe": "status == 'ok'", "sql": "rows == 0", "redis": "status == 'ok'", "docker": "status == 'ok'"}
# ```promql target=prom pass="value < 0.05": an instant query against a Prometheus source.
BLOCK_KINDS["promql"] = "prometheus"
DEFAULT_PASS["promql"] = "status == 'ok'"
# ```http target=api: GET / HEAD / OPTIONS through the HTTP probe; any other method is an action.
BLOCK_KINDS["http"] = "http"
DEFAULT_PASS["http"] = "status == 'ok'"


def slugify(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_~\[\]()<>!]", "", text.strip().lower())
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"\s+", "-", text).strip("-")


HANDOVER_PREFIX = "runbook:"  # `goto runbook:ID` hands the incident over to another runbook


@dataclass(frozen=True, slots=True)
class Branch:
    """Where to go after a step: the next step, stop, a step id / section slug, or (`runbook`)
    another runbook, by id: a hand-over."""

    action: Literal["next", "stop", "goto", "runbook"] = "next"
    target: str = ""  # resolved step id for goto; the runbook id for a hand-over

    def __str__(self) -> str:
        if self.action == "runbook":
            return f"goto {HANDOVER_PREFIX}{self.target}"
        return f"goto {self.target}" if self.action == "goto" else self.action

    @property
    def handover(self) -> str:
        """The runbook this branch hands over to, or ""."""
        return self.target if self.action == "runbook" else ""


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    index: int  # 0-based position in the runbook
    title: str  # first line of the explanation, Markdown emphasis removed
    text: str  # the full explanation (Markdown), without the runnable block
    kind: StepKind
    section: str  # the nearest heading's text
    line: int  # 1-based line of the list item in the file
    block: str = ""  # probe / sql / redis / docker ("" for manual)
    target: str = ""
    probe: str = ""  # for probe steps
    command: str = ""  # SQL text, or the Redis / Docker command line (may hold {{ templates }})
    words: tuple[str, ...] = ()  # the split Redis / Docker command
    passes: Condition | None = None
    report: str = ""
    timeout: float | None = None
    on_pass: Branch = field(default_factory=Branch)
    on_fail: Branch = field(default_factory=Branch)
    classification: Classification | None = None
    request: Any = None  # an ```http block's runbooks.http_block.HttpRequest (placeholders for templates)
    # A `probe: http` block's own HTTP keys over the target's (method, path, headers, ...).
    http: tuple[tuple[str, Any], ...] = ()

    @property
    def automatic(self) -> bool:
        return self.kind in ("probe", "sql", "redis", "docker", "promql", "http")

    @property
    def is_action(self) -> bool:
        return self.kind == "action"

    @property
    def target_kind(self) -> str:
        return PROBE_KINDS.get(self.probe, "") if self.block == "probe" else BLOCK_KINDS.get(self.block, "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "title": self.title,
            "kind": self.kind,
            "block": self.block or None,
            "section": self.section,
            "line": self.line,
            "target": self.target or None,
            "probe": self.probe or None,
            "command": self.command or None,
            "pass": self.passes.text if self.passes else None,
            "on_pass": str(self.on_pass),
            "on_fail": str(self.on_fail),
            "classification": self.classification.reason if self.classification else None,
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Trigger:
    probe: str
    when: Condition
    target: str = ""  # empty: any target that has this probe

    def __str__(self) -> str:
        return f"{self.target or '*'}.{self.probe}: {self.when.text}"


@dataclass(frozen=True, slots=True)
class Runbook:
    id: str
    title: str
    severity: str
    path: Path
    tags: tuple[str, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    steps: tuple[Step, ...] = ()
    body: str = ""  # the Markdown after the front matter

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    @property
    def automatic_steps(self) -> list[Step]:
        return [s for s in self.steps if s.automatic]

    @property
    def handovers(self) -> tuple[str, ...]:
        """The runbooks its steps hand over to (`goto runbook:ID`), in step order."""
        found = (b.handover for s in self.steps for b in (s.on_pass, s.on_fail))
        return tuple(dict.fromkeys(r for r in found if r))

    def to_json(self, *, steps: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "tags": list(self.tags),
            "path": str(self.path),
            "triggers": [str(t) for t in self.triggers],
        }
        if steps:
            out["steps"] = [s.to_json() for s in self.steps]
        else:
            out["steps"] = len(self.steps)
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    """A load problem, phrased as `file:line: message`."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


class Readings:
    """Current ProbeResults indexed by probe and by (probe, target), built once per
    suggestion pass: each trigger then looks only at the readings it names (a trigger on one
    target is one lookup, not a scan of a fleet's thousand readings)."""

    __slots__ = ("by_probe", "by_target", "known", "memo")

    def __init__(self, results: Iterable[Any], known: dict[tuple[int, int], tuple[Any, bool]] | None = None) -> None:
        # (trigger, reading) -> verdict, from the previous pass (`known`) and this one (`memo`):
        # a reading that did not change since is not evaluated again. Keyed by identity, and
        # the reading is kept beside its verdict, so a recycled id never matches.
        self.known = known or {}
        self.memo: dict[tuple[int, int], tuple[Any, bool]] = {}
        self.by_probe: dict[str, list[Any]] = {}
        self.by_target: dict[tuple[str, str], list[Any]] = {}
        for res in results:
            self.by_probe.setdefault(res.probe, []).append(res)
            self.by_target.setdefault((res.probe, res.target), []).append(res)

    def of(self, probe: str, target: str | None) -> list[Any]:
        return self.by_target.get((probe, target), []) if target else self.by_probe.get(probe, [])


def triggered(runbook: Runbook, results: list[Any] | Readings) -> list[str]:
    """The triggers of a runbook that current ProbeResults satisfy, as readable reasons."""
    from runbooks.conditions import EvalError

    readings = results if isinstance(results, Readings) else Readings(results)
    reasons = []
    for trig in runbook.triggers:
        for res in readings.of(trig.probe, trig.target):
            key = (id(trig), id(res))
            seen = readings.known.get(key)
            if seen is not None and seen[0] is res:
                verdict = seen[1]
            else:
                names = {"status": str(res.status), "value": res.value, "data": res.data,
                         "summary": res.summary, "target": res.target, "probe": res.probe}
                try:
                    verdict = bool(trig.when.test(names))
                except EvalError:
                    verdict = False  # a trigger that cannot be evaluated simply does not suggest
            readings.memo[key] = (res, verdict)
            if verdict:
                reasons.append(f"{res.target} {res.probe}: {trig.when.text}")
    return reasons
