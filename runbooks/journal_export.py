"""An incident written up as a postmortem's first draft: Timeline, Symptoms seen, Actions, Notes,
warroom's own errors, Resolution.

Symptoms are what the targets showed (readings that were not ok, with their first and last
sighting, and the checks of runbook steps that found a problem); warroom's own errors (a step
that outlived its timeout, a condition or template that could not be evaluated, a command the
classifier refused, a crashed backend) are kept apart so they are not mistaken for the
incident. An action that could not run says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# A step error that is warroom's own doing, not the target's (see the runner's messages).
_OWN_ERRORS = re.compile(
    r"cannot fill the command|condition could not be evaluated|condition too expensive|backend returned no "
    r"|outlived its timeout|not read-only once filled in|\b[A-Z][A-Za-z]+(Error|Exception): "
)
_NOT_RUN = (
    re.compile(r"^action not run \((?P<why>[^)]*)\): (?P<what>.*)$"),
    re.compile(r"^not done \((?P<why>[^)]*)\): (?P<what>.*)$"),
    re.compile(r"^refused: (?P<why>.*)$"),
)


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if ts else "-"


def own_error(event: Any) -> bool:
    """Whether an event is warroom's own failure rather than something a target showed."""
    data = event.data or {}
    inner = data.get("data") if isinstance(data.get("data"), dict) else {}
    if event.kind == "warroom-error" or data.get("own_error") or inner.get("own_error"):
        return True
    if event.kind in ("probe", "step") and event.status == "refused" and not _is_action(event):
        return True  # a read the classifier refused once filled in
    return event.kind in ("probe", "step") and event.status == "error" and bool(_OWN_ERRORS.search(event.summary))


def _is_action(event: Any) -> bool:
    return event.kind in ("action", "action-declined") or (event.data or {}).get("step_kind") == "action" \
        or event.summary.startswith("action not run")


_OFF_PATH = ("not on this path", "not reached")  # a walk's skips: nothing was meant to run


def action_line(event: Any) -> str | None:
    """`done: ...`, `failed: ...` or `not run: why: what` for an action's event; None otherwise."""
    if not _is_action(event) or event.status == "pending" or event.summary.startswith(_OFF_PATH):
        return None
    if event.kind == "action" and event.status == "pass":
        return f"done: {event.summary.removeprefix('done: ')}"
    if event.kind == "action":
        return f"failed: {event.summary}"
    for pattern in _NOT_RUN:
        if m := pattern.match(event.summary):
            what = (m.groupdict().get("what") or "").removeprefix("would ")
            return f"not run: {m['why']}" + (f": {what}" if what else "")
    return f"not run: {event.summary}"


@dataclass
class Sighting:
    """One symptom across the incident: where, how bad at worst, first and last seen."""

    where: str
    worst: str
    first: float
    last: float
    reading: str
    ended: str = ""  # cleared / still seen at ... / "" while open


_RANK = {"ok": 0, "warn": 1, "fail": 2, "error": 3}


def sightings(events: list[Any]) -> list[Sighting]:
    """Symptoms in order of first sighting: cockpit readings (symptom / symptom-end events) and
    runbook checks that found a problem (or could not reach their target)."""
    found: dict[str, Sighting] = {}
    for e in events:
        data = e.data or {}
        if e.kind == "symptom":
            where = str(data.get("where") or e.step_id)
        elif e.kind == "symptom-end":
            where = str(data.get("where") or e.step_id)
            if where in found:
                found[where].last = max(found[where].last, float(data.get("last_seen") or e.ts))
                found[where].ended = e.status
            continue
        elif e.kind == "probe" and e.status in ("fail", "error") and not own_error(e) and not _is_action(e):
            where = f"{e.runbook_id} step {e.step_id}"
        else:
            continue
        seen = found.get(where)
        if seen is None:
            found[where] = Sighting(where, e.status, e.ts, e.ts, e.summary)
            continue
        seen.last, seen.ended = e.ts, ""
        if _RANK.get(e.status, 0) >= _RANK.get(seen.worst, 0):
            seen.worst, seen.reading = e.status, e.summary
    return sorted(found.values(), key=lambda s: s.first)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(incident: Any, events: list[Any]) -> str:
    start = events[0].ts if events else incident.started_at
    title = incident.title or ", ".join(incident.runbooks) or "untitled"
    ended = f"{iso(incident.ended_at)} ({incident.status})" if incident.ended_at else "still open"
    lines = [f"# Incident {incident.id}: {title}", "",
             f"- Environment: {incident.env}", f"- Started: {iso(incident.started_at)}", f"- Ended: {ended}",
             f"- Runbooks: {', '.join(incident.runbooks) or '-'}", "",
             "## Timeline", "", "| time (UTC) | +s | kind | step | status | duration | summary |", "|---|---|---|---|---|---|---|"]
    for e in events:
        took = f"{e.duration_ms:.0f} ms" if e.duration_ms is not None else ""
        step = e.step_id or (e.data or {}).get("where", "")
        lines.append(f"| {iso(e.ts)} | {e.ts - start:.1f} | {e.kind} | {_cell(str(step))} | {e.status} | {took} | {_cell(e.summary)} |")
    if not events:
        lines.append("| - | | | | | | nothing recorded |")

    lines += ["", "## Symptoms seen", ""]
    seen = sightings(events)
    if seen:
        lines += ["| where | worst | first seen | last seen | reading |", "|---|---|---|---|---|"]
        for s in seen:
            last = iso(s.last) + (f" ({s.ended})" if s.ended else "")
            lines.append(f"| {_cell(s.where)} | {s.worst} | {iso(s.first)} | {last} | {_cell(s.reading)} |")
    else:
        lines.append("- none recorded")

    lines += ["", "## Actions", ""]
    actions = [(e, text) for e in events if (text := action_line(e))]
    lines += [f"- {iso(e.ts)} `{e.step_id}` {text}" for e, text in actions] or ["- none"]

    lines += ["", "## Notes", ""]
    lines += [f"- {iso(e.ts)}{f' `{e.step_id}`' if e.step_id else ''}: {e.summary}" for e in events if e.kind == "note"] or ["- none"]

    lines += ["", "## warroom's own errors", ""]
    lines += [f"- {iso(e.ts)} `{e.step_id or (e.data or {}).get('where', '')}` ({e.status}): {e.summary}"
              for e in events if own_error(e)] or ["- none"]

    lines += ["", "## Resolution", ""]
    if incident.resolution:
        lines.append(incident.resolution)
    elif incident.open:
        lines.append(f"not closed yet: `warroom journal close {incident.id} --resolution \"...\"`")
    else:
        lines.append(f"closed ({incident.status}) without a resolution")
    return "\n".join(lines) + "\n"
