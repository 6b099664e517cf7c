"""What the checklist and guided mode share: the runbook screen base class, its keys and its wording.
`RunbookScreenBase` owns nothing but a `RunbookRun`, so every screen of one runbook shows the same
state; it follows the live readings of the runbook's probe steps and its hand-overs to other
runbooks, and runs, acts on, marks, notes and copies the current step. `STEP_KEYS` are the keys
both modes give those operations, `step_facts` says how a step is wired and `READ_ONLY_REFUSAL`
is what an action answers in read-only mode; `tui.screens.checklist` re-exports all four.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from runbooks.conditions import EvalError
from runbooks.copyable import step_command
from runbooks.model import PROBE_KINDS, Step
from tui.incident import Handover, RunbookRun
from tui.screens.confirm import ConfirmAction, NoteDialog

if TYPE_CHECKING:
    from tui.app import WarroomApp

READ_ONLY_REFUSAL = "read-only: actions disabled"
COPIED_SHOWN = 40  # characters of a copied command the notification repeats


def step_facts(step: Step) -> str:
    """`sql on primary · pass when rows == 0 · on fail goto x`: how a step is wired."""
    bits = [step.kind if step.kind == step.block or not step.block else f"{step.kind} ({step.block})"]
    if step.target:
        bits.append(f"on {step.target}" + (f" · {step.probe}" if step.probe else ""))
    if step.passes is not None:
        bits.append(f"pass when {step.passes.text}")
    if str(step.on_pass) != "next":
        bits.append(f"on pass {step.on_pass}")
    if str(step.on_fail) != "next":
        bits.append(f"on fail {step.on_fail}")
    return " · ".join(bits)


class RunbookScreenBase(Screen[None]):
    """Owns nothing but a `RunbookRun`: every screen of the same runbook shows the same state."""

    app: WarroomApp  # type: ignore[assignment]

    # The title bar and the line of the live reading, alike on every runbook screen.
    DEFAULT_CSS = """
    RunbookScreenBase #rb-title { dock: top; height: 1; width: 1fr; background: $panel; text-style: bold; padding: 0 1; }
    RunbookScreenBase #live { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, run: RunbookRun) -> None:
        super().__init__()
        self.run = run

    # --- to implement --------------------------------------------------------------------

    def current_step(self) -> Step | None:
        raise NotImplementedError

    def refresh_step(self, step_id: str) -> None:
        raise NotImplementedError

    def refresh_all(self) -> None:
        raise NotImplementedError

    # --- life cycle ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self.run.listen(self.step_changed)
        self.refresh_all()
        self.update_live()

    def on_unmount(self) -> None:
        self.run.unlisten(self.step_changed)

    def on_screen_suspend(self) -> None:
        # Popped or covered alike: the widgets (and the step the cursor is on) are still there.
        self.remember_left()

    def remember_left(self) -> None:
        """Where `c` on the main screen comes back to: this runbook, mode and step."""
        try:
            step = self.current_step()
        except NoMatches:  # the screen's widgets are already gone
            step = None
        mode = "guided" if type(self).__name__ == "GuidedScreen" else "checklist"
        self.app.runbook_left = (self.run.runbook, mode, step.id if step is not None else None)

    def step_changed(self, step_id: str) -> None:
        # A covered or closing screen redraws everything when it is shown again.
        if self.is_current:
            self.refresh_step(step_id)

    def on_screen_resume(self) -> None:
        # Another screen of this runbook (guided / checklist) may have run steps meanwhile.
        self.refresh_all()
        self.update_live()

    def store_changed(self, changed: set[str]) -> None:
        """New readings arrived (the app calls this on the top screen)."""
        if changed & {p for _, _, p in self.watched()}:
            self.update_live()

    def header_text(self, mode: str) -> str:
        rb = self.run.runbook
        incident = self.run.incident
        bits = [f"{rb.title}", rb.severity, mode]
        if incident is not None and incident.incident_id is not None:
            bits.append(f"incident #{incident.incident_id}")
        if incident is not None and incident.problem:
            bits.append(incident.problem)
        if self.run.read_only:
            bits.append("READ-ONLY")
        return " · ".join(bits)

    # --- live readings -------------------------------------------------------------------

    def watched(self) -> list[tuple[str, str, str]]:
        """(kind, target, probe) of the runbook's probe steps, in step order."""
        keys = [(PROBE_KINDS[s.probe], s.target, s.probe) for s in self.run.runbook.steps if s.block == "probe" and s.probe in PROBE_KINDS]
        return list(dict.fromkeys(keys))

    def live_text(self, keys: list[tuple[str, str, str]] | None = None) -> Text:
        store = getattr(self.app, "store", None)
        text = Text("live ", style="bold", no_wrap=True, overflow="ellipsis")
        for n, key in enumerate(keys if keys is not None else self.watched()):
            reading = store.reading(key) if store is not None else None
            if n:
                text.append(" │ ", style="dim")
            if reading is None:
                text.append(f"{key[1]} {key[2]}: waiting for a reading", style="dim")
                continue
            state = reading.state
            text.append(f"{key[1]} {key[2]} ", style="bold")
            style = {"ok": "green", "warn": "yellow", "fail": "red", "error": "magenta", "stale": "dim"}.get(state, "")
            summary = reading.latest.summary.removeprefix(f"{key[1]}: ")
            text.append(f"{state}: {summary}", style=style)
        return text

    def update_live(self) -> None:
        for live in self.query("#live").results(Static):
            live.update(self.live_text())

    # --- hand-overs ----------------------------------------------------------------------

    def handover_of(self, step: Step) -> Handover | None:
        """The hand-over Enter follows from `step`: where its branch leads once it has an
        outcome (a manual hand-over step needs none: following it is doing it)."""
        following = self.run.next_step(step)
        if not isinstance(following, Handover):
            return None
        done = self.run.states[step.id].status not in ("pending", "running")
        return following if done or step.kind == "manual" else None

    def runbook_title(self, runbook_id: str) -> str:
        entry = next((e for e in getattr(self.app, "runbooks", ()) if e.id == runbook_id), None)
        return entry.title if entry is not None else runbook_id

    def follow_handover(self, handover: Handover, *, guided: bool) -> None:
        """Open the runbook a step hands over to (journaled); Esc comes back here."""
        self.run.hand_over(handover)
        self.app.open_runbook(handover.runbook_id, guided=guided)

    # --- operations ----------------------------------------------------------------------

    def action_run_step(self) -> None:
        step = self.current_step()
        if step is None:
            return
        if why := self.run.not_applicable(step):
            self.notify(f"{step.id}: {why}")
        elif step.is_action:
            self.action_run_action()
        elif step.kind == "manual":
            self.notify("a manual step: mark it with p (pass), f (fail) or s (skip)")
        elif self.run.states[step.id].status == "running":
            self.notify(f"{step.id} is already running")
        else:
            self.run_in_worker(step)

    @work(group="runbook-step", exclusive=False, exit_on_error=False)
    async def run_in_worker(self, step: Step) -> None:
        # A read is harmless to lose: leaving the screen cancels it and the step shows its old state.
        await self.run.run(step)

    def action_mark(self, mark: str) -> None:
        step = self.current_step()
        if step is None:
            return
        if step.kind != "manual":
            self.notify(f"only manual steps are marked; {step.id} is {step.kind} (r runs it)")
            return
        self.run.mark(step, mark)

    def action_copy_command(self) -> None:
        """The step's command to the clipboard with OSC 52 (over SSH too; tmux: set-clipboard on)."""
        step = self.current_step()
        if step is None:
            return
        text = step_command(step, self.run.filled_command(step) if step.command else None)
        if not text:
            self.notify(f"{step.id}: nothing to copy")
            return
        self.app.copy_to_clipboard(text)
        flat = " ".join(text.split())
        self.notify(f"copied: {flat[:COPIED_SHOWN]}" + ("…" if len(flat) > COPIED_SHOWN else ""))

    def action_note(self) -> None:
        step = self.current_step()
        if step is not None:
            self.app.push_screen(NoteDialog(step.title), lambda text: self.run.note(step, text) if text else None)

    def action_run_action(self) -> None:
        step = self.current_step()
        if step is None:
            return
        if not step.is_action:
            self.notify(f"{step.id} is not an action ({step.kind}); r runs it")
            return
        if self.run.states[step.id].status == "running":
            self.notify(f"{step.id} is already running")
            return
        if why := self.run.not_applicable(step):
            self.notify(f"{step.id}: {why}")
            return
        if self.run.read_only:
            self.notify(READ_ONLY_REFUSAL, severity="warning")
            self.start_action(step, confirmed=False)  # journaled as declined (read-only)
            return
        try:
            what = self.run.describe(step)
        except EvalError as exc:
            self.notify(f"cannot run {step.id}: {exc}", severity="error")
            self.start_action(step, confirmed=False)  # refused and journaled, never guessed
            return

        def decided(confirmed: bool | None) -> None:
            self.start_action(step, confirmed=bool(confirmed))

        self.app.push_screen(ConfirmAction(step_title=f"{step.index + 1}. {step.title}", what=what,
                                           command=self.run.filled_command(step), target=step.target,
                                           preview=self.run.previewer(step), hold=self.run.counts_first(step)), decided)

    def start_action(self, step: Step, *, confirmed: bool) -> None:
        # On the app, not this screen: a confirmed action must finish and be journaled even
        # when the operator leaves the screen while it runs.
        async def act() -> None:
            outcome = await self.run.act(step, confirmed=confirmed)
            if confirmed and str(outcome.status) == "pass":
                self.app.notify(outcome.summary, title="action done")
            elif confirmed and not self.run.read_only:
                self.app.notify(outcome.summary, title="action failed", severity="error")

        self.app.run_worker(act(), group=f"runbook-action:{self.run.runbook.id}:{step.id}", exclusive=True, exit_on_error=False)


# The keys the checklist and guided mode share for the current step (after `r`, whose label
# differs): run its action, mark it, note it, copy its command.
STEP_KEYS: list[Binding] = [
    Binding("a", "run_action", "Action", id="runbook.action"),
    Binding("p", "mark('pass')", "Pass", id="runbook.mark_pass"),
    Binding("f", "mark('fail')", "Fail", id="runbook.mark_fail"),
    Binding("s", "mark('skip')", "Skip", id="runbook.mark_skip"),
    Binding("n", "note", "Note", id="runbook.note"),
    Binding("y", "copy_command", "Copy", id="runbook.copy"),
]
