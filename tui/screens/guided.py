"""Guided mode: one runbook step at a time, its explanation, live result, branch to the next step, notes."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Label, Markdown, Static

from runbooks.conditions import EvalError
from runbooks.copyable import step_command
from runbooks.model import PROBE_KINDS, Step
from runbooks.runner import not_applicable
from tui.incident import Handover, RunbookRun
from tui.screens.checklist import READ_ONLY_REFUSAL, STEP_KEYS, RunbookScreenBase, step_facts
from widgets.checklist import format_duration, format_time, kind_text, status_text
from widgets.key_bar import KeyBar

# Entering a step re-runs its read when the last result is older than this: what the
# operator sees on arrival is current, without re-running every time they page back and forth.
RERUN_AFTER_S = 10.0
UNMARKED = ("pending", "manual")  # a manual step's states before the operator's p/f/s


class GuidedScreen(RunbookScreenBase):
    """Step k/N with the full explanation; Enter follows the branch rules to the next step."""

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "back", "Back", id="guided.back"),
        Binding("enter,right", "next", "Next step", id="guided.next"),
        Binding("left", "previous", "Previous", id="guided.previous"),
        Binding("r", "run_step", "Re-run", id="runbook.run"),
        # `y` is left out of the key bar here (it would push Quit off at 120 columns); the hint says it.
        *[Binding(b.key, b.action, b.description, show=b.id != "runbook.copy", id=b.id) for b in STEP_KEYS],
        Binding("c", "checklist", "Checklist", id="guided.checklist"),
    ]

    DEFAULT_CSS = """
    GuidedScreen #step-head { height: 1; padding: 0 1; background: $boost; }
    GuidedScreen #explain { height: auto; max-height: 1fr; border: round $secondary; padding: 0 1; }
    GuidedScreen #explain:focus { border: round $accent; }
    GuidedScreen #explain Markdown { margin: 0; padding: 0; }
    GuidedScreen #result { height: auto; max-height: 6; padding: 0 1; }
    GuidedScreen #next { height: 1; padding: 0 1; color: $text-muted; }
    GuidedScreen #note { height: 1; border: none; padding: 0 1; background: $boost; }
    GuidedScreen #note:focus { background: $surface-lighten-1; }
    GuidedScreen.-short #result { max-height: 4; }
    """

    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (32, "-tall")]

    def __init__(self, run: RunbookRun, *, start: str | None = None, auto_run: bool = True) -> None:
        super().__init__(run)
        steps = run.runbook.steps
        first = run.runbook.step(start) if start else None
        self.path: list[str] = [first.id] if first else ([steps[0].id] if steps else [])
        self.auto_run = auto_run
        self.stopped = ""  # why the walk ended, when it did
        self.asking = ""  # the manual step Enter asked a mark for: marking it moves on

    def compose(self) -> ComposeResult:
        yield Label(self.header_text("guided"), id="rb-title", markup=False)
        yield Static(id="step-head")
        yield Static(id="live")
        with VerticalScroll(id="explain", can_focus=True):
            yield Markdown(id="explanation")
        yield Static(id="result")
        yield Static(id="next")
        yield Input(placeholder="n: note for this step (Enter saves, Esc leaves the note)", id="note")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#explain").focus()
        self.enter_step()

    # --- the current step -----------------------------------------------------------------

    def current_step(self) -> Step | None:
        return self.run.runbook.step(self.path[-1]) if self.path else None

    def enter_step(self) -> None:
        """Show the current step and run its read when it has no fresh result."""
        self.stopped = ""
        self.asking = ""
        step = self.current_step()
        if step is not None and step.is_action:
            self.run.not_applicable(step)  # shows skipped, saying why: Enter goes on past it
        self.refresh_all()
        if step is None or not step.automatic or not self.auto_run:
            return
        state = self.run.states[step.id]
        fresh = state.ts is not None and time.time() - state.ts < RERUN_AFTER_S and state.ts > self.run.last_action_ts
        if state.status == "pending" or (state.status != "running" and not fresh):
            self.run_in_worker(step)

    def refresh_all(self) -> None:
        step = self.current_step()
        self.query_one("#rb-title", Label).update(self.header_text("guided"))
        if step is None:
            self.query_one("#step-head", Static).update("this runbook has no numbered steps")
            return
        self.query_one("#explanation", Markdown).update(self.explanation(step))
        self.query_one("#explain", VerticalScroll).scroll_home(animate=False)
        self.refresh_step(step.id)

    def refresh_step(self, step_id: str) -> None:
        step = self.current_step()
        if step is None or step.id != step_id:
            return
        state = self.run.states[step.id]
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"Step {step.index + 1}/{len(self.run.runbook.steps)}", style="bold")
        head.append("  ")
        head.append_text(status_text(state.status))
        head.append("  ")
        head.append_text(kind_text(step.kind))
        head.append(f"  {step.section}" if step.section else "", style="dim")
        self.query_one("#step-head", Static).update(head)
        result = Text()
        result.append_text(status_text(state.status))
        when = " · ".join(b for b in (format_duration(state.duration_ms), format_time(state.ts)) if b)
        result.append(f"  {state.summary or self.hint(step)}" + (f"  ({when})" if when else ""))
        for note in state.notes[-2:]:
            result.append(f"\nnote: {note}", style="cyan")
        self.query_one("#result", Static).update(result)
        self.query_one("#next", Static).update(self.next_text(step))
        self.update_live()

    def hint(self, step: Step) -> str:
        if handover := self.handover_of(step):
            return f"Enter opens the runbook it hands over to: {self.runbook_title(handover.runbook_id)}"
        if step.is_action:
            return READ_ONLY_REFUSAL if self.run.read_only else "an action: a runs it after a confirmation"
        if step.kind == "manual":
            return "a manual step: p pass · f fail · s skip" + (" · y copies its command" if step_command(step) else "")
        return "not run yet: r runs it"

    def explanation(self, step: Step) -> str:
        parts = [step.text, "", f"*{step_facts(step)}*"]
        if step.command:
            lang = "sql" if step.block == "sql" else "text"
            parts += ["", f"```{lang}", self.run.filled_command(step), "```"]
        if step.is_action and (why := not_applicable(step, self.run.env)):
            parts += ["", f"**{why[0].upper()}{why[1:]}.**"]
        elif step.is_action:
            if self.run.read_only:
                parts += ["", f"**{READ_ONLY_REFUSAL}.**"]
            else:
                try:
                    parts += ["", f"**Press `a` to {self.run.describe(step)}** (asks for confirmation)."]
                except EvalError as exc:
                    parts += ["", f"**Cannot run yet:** {exc}"]
        return "\n".join(parts)

    def next_text(self, step: Step) -> Text:
        if self.stopped:
            return Text(self.stopped, style="bold")
        if self.asking == step.id and self.run.states[step.id].status in UNMARKED:
            return Text("Mark this step first: p pass · f fail · s skip", style="bold reverse")
        following = self.run.next_step(step)
        if isinstance(following, Handover):
            title = self.runbook_title(following.runbook_id)
            return Text(f"Enter → runbook: {title} (hand-over)", style="bold", no_wrap=True, overflow="ellipsis")
        if following == "stop":
            return Text(f"Enter: the runbook stops here ({step.id}: {self.run.states[step.id].status})")
        if following is None:
            return Text("Enter: end of the runbook")
        assert isinstance(following, Step)
        text = Text(f"Enter → {following.index + 1}. {following.title}", no_wrap=True, overflow="ellipsis")
        if following.index != step.index + 1:
            text.append(f" (jump: {step.id} {self.run.states[step.id].status})", style="italic")
        return text

    def live_text(self, keys: list[tuple[str, str, str]] | None = None) -> Text:
        step = self.current_step()
        keys = self.watched() if keys is None else keys
        if step is not None and step.target and (not keys or not_applicable(step, self.run.env)):
            what = "not configured here" if not_applicable(step, self.run.env) else "no reading yet"
            return Text(f"live {step.target}: {what}", style="dim", no_wrap=True, overflow="ellipsis")
        return super().live_text(keys)

    def watched(self) -> list[tuple[str, str, str]]:
        """The live line shows the step's own target: its probe, or for a SQL / Redis / Docker
        step the runbook's probes of that target (else every reading of it). A manual step has
        no target: the runbook's probes."""
        step = self.current_step()
        if step is not None and step.block == "probe" and step.probe in PROBE_KINDS:
            return [(PROBE_KINDS[step.probe], step.target, step.probe)]
        everything = super().watched()
        if step is None or not step.target:
            return everything
        own = [key for key in everything if key[1] == step.target]
        if own:
            return own
        store = getattr(self.app, "store", None)
        return sorted(key for key in (store.latest if store is not None else ()) if key[1] == step.target)

    # --- navigation ------------------------------------------------------------------------

    def action_next(self) -> None:
        step = self.current_step()
        if step is None:
            return
        following = self.run.next_step(step)
        if isinstance(following, Handover):  # hand-overs first: a manual hand-over step needs no mark
            self.follow_handover(following, guided=True)
            return
        if step.kind == "manual" and self.run.states[step.id].status in UNMARKED:
            # Its answer decides the branch: ask for it instead of moving on silently.
            self.asking = step.id
            self.query_one("#next", Static).update(self.next_text(step))
            self.notify(f"{step.id}: p pass · f fail · s skip (then the next step)")
            return
        if following == "stop" or following is None:
            self.stopped = ("the runbook stops here" if following == "stop" else "end of the runbook") + \
                " (Esc: back, c: checklist, ←: previous step)"
            self.query_one("#next", Static).update(self.next_text(step))
            return
        assert isinstance(following, Step)
        if following.id in self.path:
            self.path = self.path[: self.path.index(following.id)]
        self.path.append(following.id)
        self.enter_step()

    def action_mark(self, mark: str) -> None:
        step = self.current_step()
        super().action_mark(mark)
        if step is not None and self.asking == step.id and self.run.states[step.id].status not in UNMARKED:
            self.asking = ""
            self.action_next()  # the answer Enter asked for: go on along its branch

    def action_previous(self) -> None:
        if len(self.path) > 1:
            self.path.pop()
            self.enter_step()

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one("#explain").focus()
            return
        self.app.pop_screen()

    def action_checklist(self) -> None:
        from tui.screens.runbook import RunbookScreen

        step = self.current_step()
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        if isinstance(below, RunbookScreen) and below.run is self.run:
            self.app.pop_screen()
            if step is not None:
                below.checklist.select_step(step.id)
            return
        self.app.switch_screen(RunbookScreen(self.run, start=step.id if step else None))

    # --- notes -----------------------------------------------------------------------------

    def action_note(self) -> None:
        self.query_one("#note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        step = self.current_step()
        if step is not None and event.value.strip():
            self.run.note(step, event.value)
            self.notify(f"note saved on {step.id}")
        event.input.value = ""
        self.query_one("#explain").focus()
