"""The runbook screen the app opens (the probe-backed checklist) and the app's incident glue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.screen import Screen

from runbooks.catalog import RunbookEntry
from tui.screens.checklist import ChecklistScreen

if TYPE_CHECKING:
    from tui.incident import IncidentLog


class RunbookScreen(ChecklistScreen):
    """A runbook's checklist; `WarroomApp.open_runbook(runbook_id, guided)` opens it (or guided mode)."""


def incident_of(app: Any) -> IncidentLog:
    """The cockpit session's incident, created on first use (one per session, or resumed)."""
    from tui.incident import IncidentLog

    incident = getattr(app, "incident", None)
    if incident is None:
        incident = app.incident = IncidentLog(app.env, read_only=bool(getattr(app, "read_only", False)))
        # Runbook reads go through the probes' own connection to each target (no extra slot).
        incident.sessions = getattr(getattr(app, "source", None), "session", None)
    return incident


def runbook_screen(app: Any, entry: RunbookEntry, *, guided: bool = False) -> Screen[None] | None:
    """The checklist (or guided) screen for a runbook; None after telling the operator why not."""
    from runbooks.loader import load_file

    runbook, problems = load_file(entry.path)
    if runbook is None:
        app.notify("\n".join(str(p) for p in problems[:3]), title=f"runbook {entry.id} cannot be used", severity="error")
        return None
    incident = incident_of(app)
    run = incident.run_for(runbook)
    incident.opened(runbook, "guided" if guided else "checklist")
    if guided:
        from tui.screens.guided import GuidedScreen

        return GuidedScreen(run)
    return RunbookScreen(run)


def resume_incident(app: Any) -> None:
    """--resume: reopen the journal's last incident; its runbooks show their steps as left."""
    incident = incident_of(app)
    last = incident.resume()
    if last is None:
        app.notify(incident.problem or "--resume: no incident in the journal yet; a new one starts with the first runbook",
                   severity="warning")
        return
    names = ", ".join(last.runbooks) or "no runbook yet"
    app.notify(f"resumed incident #{last.id} ({names})", title="incident journal")
    if last.runbooks and not getattr(app, "start_runbook", None):
        app.call_after_refresh(app.open_runbook, last.runbooks[-1])


def reopen_runbook(app: Any) -> bool:
    """`c` on the main screen: the runbook screen left last, on the step it was left at (the
    app's `runbook_left`, set by RunbookScreenBase). False when none was left yet."""
    left = getattr(app, "runbook_left", None)
    if left is None:
        return False
    runbook, mode, step_id = left
    incident = incident_of(app)
    run = incident.run_for(runbook)  # the same run, or a new one once that incident was closed
    incident.opened(runbook, mode)
    if mode == "guided":
        from tui.screens.guided import GuidedScreen

        app.push_screen(GuidedScreen(run, start=step_id))
    else:
        app.push_screen(RunbookScreen(run, start=step_id))
    return True
