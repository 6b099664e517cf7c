"""The runbook checklist screen; the behaviour it shares with guided mode (run, act, mark, note) is in runbook_base."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Markdown, Static

from runbooks.conditions import EvalError
from runbooks.model import Step
from runbooks.runner import not_applicable
from tui.incident import RunbookRun
from tui.screens.runbook_base import READ_ONLY_REFUSAL, STEP_KEYS, RunbookScreenBase, step_facts
from widgets.checklist import Checklist, format_duration, format_time, status_text
from widgets.key_bar import KeyBar

__all__ = ["READ_ONLY_REFUSAL", "STEP_KEYS", "ChecklistScreen", "RunbookScreenBase", "step_facts"]


class ChecklistScreen(RunbookScreenBase):
    """Every step with its status mark, kind, one-line result and duration."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "app.pop_screen", "Back", id="runbook.back"),
        Binding("r", "run_step", "Run step", id="runbook.run"),
        Binding("R", "run_all", "Run all", id="runbook.run_all"),
        *STEP_KEYS,
        Binding("g", "guided", "Guided", id="runbook.guided"),
    ]

    DEFAULT_CSS = """
    ChecklistScreen Checklist { height: auto; max-height: 65%; }
    ChecklistScreen #detail-box { height: 1fr; min-height: 5; padding: 0 1; }
    ChecklistScreen #detail-box Markdown { margin: 0; padding: 0; }
    ChecklistScreen #detail-explain { margin: 0; padding: 0; }
    ChecklistScreen.-short Checklist { border: none; max-height: 75%; }
    """

    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (32, "-tall")]

    def __init__(self, run: RunbookRun, *, start: str | None = None) -> None:
        super().__init__(run)
        self.start = start
        self._explained: str | None = None  # the step whose explanation #detail-explain shows

    def compose(self) -> ComposeResult:
        yield Label(self.header_text("checklist"), id="rb-title", markup=False)
        yield Static(id="live")
        yield Checklist(id="checklist")
        # The selected step: its result and what to do, then its explanation (scrolls).
        with VerticalScroll(id="detail-box"):
            yield Static(id="detail")
            yield Markdown(id="detail-explain")
            yield Static(id="detail-facts")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        if self.start:
            self.checklist.select_step(self.start)
        self.query_one(Checklist).focus()

    @property
    def checklist(self) -> Checklist:
        return self.query_one(Checklist)

    def current_step(self) -> Step | None:
        step_id = self.checklist.selected_step_id
        return self.run.runbook.step(step_id) if step_id else None

    def refresh_all(self) -> None:
        self.query_one("#rb-title", Label).update(self.header_text("checklist"))
        self.checklist.show(list(self.run.runbook.steps), self.run.states)
        self.update_detail()

    def refresh_step(self, step_id: str) -> None:
        self.checklist.update_step(step_id)
        if step_id == self.checklist.selected_step_id:
            self.update_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.update_detail()

    def on_checklist_step_chosen(self, event: Checklist.StepChosen) -> None:
        step = self.current_step()
        handover = self.handover_of(step) if step is not None else None
        if handover is not None:
            self.follow_handover(handover, guided=False)
        else:
            self.action_run_step()

    def update_detail(self) -> None:
        step = self.current_step()
        detail = self.query_one("#detail", Static)
        explain = self.query_one("#detail-explain", Markdown)
        facts = self.query_one("#detail-facts", Static)
        if step is None:
            detail.update("this runbook has no numbered steps")
            return
        state = self.run.states[step.id]
        text = Text()
        text.append(f"{step.index + 1}. ", style="bold")
        text.append_text(status_text(state.status))
        when = " · ".join(b for b in (format_duration(state.duration_ms), format_time(state.ts)) if b)
        text.append(f"  {state.summary}" + (f"  ({when})" if when else "") + "\n")
        text.append(self.hint(step) + "\n", style="italic")
        for note in state.notes[-3:]:
            text.append(f"note: {note}\n", style="cyan")
        text.rstrip()
        detail.update(text)
        if self._explained != step.id:  # the explanation is redrawn only for another step
            self._explained = step.id
            explain.update(step.text or "")
            self.query_one("#detail-box", VerticalScroll).scroll_home(animate=False)
        section = f"{step.section} · " if step.section else ""
        facts.update(Text(section + step_facts(step), style="dim"))

    def hint(self, step: Step) -> str:
        if handover := self.handover_of(step):
            return f"Enter: open the runbook it hands over to, {self.runbook_title(handover.runbook_id)}"
        if (why := not_applicable(step, self.run.env)) and step.is_action:
            return why
        if step.is_action:
            if self.run.read_only:
                return READ_ONLY_REFUSAL
            try:
                return f"a: {self.run.describe(step)} (asks for confirmation)"
            except EvalError as exc:
                return f"cannot run: {exc}"
        if step.kind == "manual":
            return "p pass · f fail · s skip · n note"
        again = "" if self.run.states[step.id].status == "pending" else " again"
        return f"r run{again} · R run all · n note · g guided"

    def action_run_all(self) -> None:
        if any(w.group == "runbook-run-all" and w.is_running for w in self.workers):
            self.notify("already running all steps")
            return
        self.run_all_worker()

    @work(group="runbook-run-all", exclusive=True, exit_on_error=False)
    async def run_all_worker(self) -> None:
        visited = await self.run.run_all(on_step=self.checklist.select_step)
        failed = [s for s in visited if self.run.states[s].status in ("fail", "error")]
        # Leave the cursor where the operator is needed: an action waiting on the path, a
        # hand-over to another runbook, else the first failure.
        waiting = [s for s in visited if self.run.states[s].status == "pending"]
        focus = next((s for s in waiting if (step := self.run.runbook.step(s)) is not None and step.is_action), None)
        last = self.run.runbook.step(visited[-1]) if visited else None
        handover = self.handover_of(last) if last is not None else None
        if handover is not None:
            focus = focus or handover.step_id
        if focus or failed:
            self.checklist.select_step(focus or failed[0])
        ran = f"ran {len(visited)} step(s) along the branches; " + (
            f"{len(failed)} did not pass: {', '.join(failed)}" if failed else "none failed")
        if handover is not None:
            step_n = last.index + 1 if last is not None else "?"
            ran += f"; step {step_n} hands over to {self.runbook_title(handover.runbook_id)} (Enter on it opens it)"
        self.notify(ran)

    def action_guided(self) -> None:
        from tui.screens.guided import GuidedScreen

        step = self.current_step()
        self.app.push_screen(GuidedScreen(self.run, start=step.id if step else None))
