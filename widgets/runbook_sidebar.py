"""The runbook sidebar: the runbooks on disk, by severity; choosing one asks the app to open it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from runbooks.catalog import FRONT_MATTER, RunbookEntry, rank_suggestions

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "major": "red", "medium": "yellow", "warning": "yellow"}
# CPU one suggestion pass may spend on triggers (in its worker thread). Each condition is
# bounded by runbooks.conditions (50 ms); many bad triggers over many readings are bounded by
# this: a pass that runs out continues, from where it stopped, SUGGEST_AGAIN_S later.
SUGGEST_BUDGET_S = 0.02
SUGGEST_AGAIN_S = 0.2
# Trigger verdicts kept between passes at most (a fleet of 5,000 readings x a few triggers each).
MAX_VERDICTS = 100_000


def _with_triggers(entry: RunbookEntry) -> Any:
    """Only the front matter's triggers, as a runbooks.model.Runbook: parsing whole runbooks
    would hold up the first readings; a runbook with bad triggers simply suggests nothing."""
    import yaml

    from runbooks.conditions import ConditionError, compile_condition
    from runbooks.model import Runbook, Trigger

    try:
        match = FRONT_MATTER.match(entry.path.read_text(encoding="utf-8"))
        meta = yaml.safe_load(match.group(1)) if match else None
        triggers = tuple(
            # `{alert: NAME}`: suggested while Alertmanager reports it firing (as the loader reads it)
            Trigger("alerts", compile_condition(f"{str(t['alert'])!r} in data.firing_names"))
            if set(t) == {"alert"} else
            Trigger(str(t["probe"]), compile_condition(str(t["when"])), str(t.get("target") or ""))
            for t in (meta or {}).get("triggers") or ())
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConditionError, AttributeError, KeyError, TypeError):
        return None
    return Runbook(entry.id, entry.title, entry.severity, entry.path, triggers=triggers) if triggers else None


class RunbookSidebar(Vertical):
    """Lists runbooks; Enter on one posts `RunbookSidebar.Opened(runbook_id)`; `/` filters."""

    WIDTH = 28
    BINDINGS: ClassVar[list[Binding]] = [Binding("slash", "filter", "Filter", id="runbooks.filter")]

    DEFAULT_CSS = """
    RunbookSidebar { width: 28; border: round $secondary; border-title-style: bold; }
    RunbookSidebar:focus-within { border: double $accent; }
    RunbookSidebar OptionList, RunbookSidebar OptionList:focus { border: none; height: 1fr; padding: 0; background: transparent; }
    RunbookSidebar Label { color: $text-muted; padding: 0 1; }
    RunbookSidebar Input { border: none; height: 1; padding: 0 1; background: transparent; }
    RunbookSidebar Input:focus { border: none; height: 1; background: $boost; }
    """

    class Opened(Message):
        """The operator chose a runbook."""

        def __init__(self, runbook_id: str) -> None:
            super().__init__()
            self.runbook_id = runbook_id

    class Suggested(Message):
        """The suggested runbooks changed (the main screen's header hints at them)."""

    def __init__(self, entries: list[RunbookEntry], *, id: str | None = None, reasons: bool = False) -> None:
        super().__init__(id=id)
        self.entries = entries
        self.filter_text = ""
        self.reasons = reasons  # full screen: each suggestion says which reading matched
        # runbook id -> the trigger readings that match, most specific first (rank_suggestions)
        self.suggested: dict[str, list[str]] = {}
        self._triggers: dict[str, Any] | None = None  # runbook id -> runbooks.model.Runbook, loaded once
        # runbook id -> the reasons its triggers matched at its last evaluation, and where the
        # next pass starts (a pass out of budget leaves the rest to the next one)
        self._matched: dict[str, list[str]] = {}
        self._verdicts: dict[tuple[int, int], tuple[Any, bool]] = {}  # runbooks.model.Readings
        self._resume_at = 0
        self._readings: list[Any] = []
        self._passing = False  # a pass is under way (or due shortly, for runbooks left over)
        self._again = False  # readings arrived meanwhile: another pass once it is done
        self._stale = False  # the readings were cleared meanwhile: drop what the pass finds

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter runbooks", id="runbook-filter")
        if not self.entries:
            yield Label("no runbooks found")
        yield OptionList(*self._options())

    def _options(self) -> list[Option]:
        words = self.filter_text.lower().split()
        shown = [e for e in self.entries if all(w in f"{e.id} {e.title} {e.severity} {e.tags}".lower() for w in words)]
        # Suggested first, most specific first (runbooks.catalog.rank_suggestions), then the
        # others by severity as found.
        order = {rid: n for n, rid in enumerate(self.suggested)}
        shown.sort(key=lambda e: order.get(e.id, len(order)))
        return [Option(self._prompt(entry), id=entry.id) for entry in shown]

    def _prompt(self, entry: RunbookEntry) -> Text:
        """One line per runbook: a mark (▶ suggested, else the severity's), the title without
        its parenthesised gloss, cut to the sidebar's width; the full title is in the checklist."""
        if entry.id in self.suggested:
            mark = ("▶ ", "bold yellow")
        else:
            mark = ("● ", SEVERITY_STYLE.get(entry.severity.lower(), "dim"))
        title = entry.title.split(" (", 1)[0]
        # Inside the border, less the two cells of the mark and one for a scrollbar (a short
        # terminal lists fewer runbooks than it has).
        room = max(8, (self.content_region.width or self.WIDTH - 2) - 3)
        if len(title) > room:
            title = title[: room - 1] + "…"
        # Text, not a markup string: titles may contain brackets.
        prompt = Text.assemble(mark, (title, "bold" if entry.id in self.suggested else ""))
        if self.reasons and self.suggested.get(entry.id):
            why = self.suggested[entry.id]
            prompt.append(f"\n  {why[0]}" + (f" (+{len(why) - 1})" if len(why) > 1 else ""), style="dim")
        return prompt

    def _rebuild(self) -> None:
        found = self.query(OptionList)
        if not found:
            return  # not composed yet: compose() builds the options from the current state
        options = found.first()
        # While the operator is in the list, the cursor stays on the runbook it is on however
        # the list reorders. Otherwise it goes back to the top, the first suggestion: `r` then
        # Enter opens what the readings point to, not what happened to be first at start-up.
        current = options.highlighted_option.id if options.highlighted_option is not None and options.has_focus else None
        options.clear_options()
        options.add_options(self._options())
        index = next((i for i in range(options.option_count) if options.get_option_at_index(i).id == current), None)
        options.highlighted = index if index is not None else (0 if options.option_count else None)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self._rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter opens the first match (`/lock⏎`) and clears the filter; with
        no match, stays put."""
        event.stop()
        options = self.query_one(OptionList)
        if options.option_count:
            options.highlighted = 0
            options.focus()
            first = options.get_option_at_index(0)
            if first.id and self.filter_text.strip():
                self.clear_filter()
                self.post_message(self.Opened(first.id))

    def action_filter(self) -> None:
        self.query_one(Input).focus()

    def clear_filter(self) -> None:
        filter_input = self.query_one(Input)
        if filter_input.value:
            filter_input.value = ""
        if self.filter_text:
            self.filter_text = ""
            self._rebuild()

    def key_escape(self, event: events.Key) -> None:
        """Esc in the filter clears it and leaves it, for the list: the next `q` quits
        instead of going into a filter the operator no longer looks at."""
        filter_input = self.query_one(Input)
        if filter_input.has_focus:
            event.stop()
            self.clear_filter()
            self.query_one(OptionList).focus()

    def on_descendant_blur(self) -> None:
        # Leaving the runbook list (for a pane, another screen) drops the filter: it must not
        # hide runbooks the next time the list is looked at.
        self.call_after_refresh(self._drop_filter_unless_focused)

    def _drop_filter_unless_focused(self) -> None:
        if self.is_attached and not self.has_focus_within and self.screen.is_current and self.filter_text:
            self.clear_filter()

    @property
    def busy(self) -> bool:
        """A suggestion pass is under way or due (tests and snapshots wait for it)."""
        return self._passing

    @property
    def first_suggestion(self) -> str | None:
        """The most specific runbook the readings point to, if any."""
        return next(iter(self.suggested), None)

    def suggest(self, results: Iterable[Any]) -> None:
        """Highlight the runbooks whose `triggers` match current ProbeResults, most specific
        first. The triggers are evaluated in a worker thread, within SUGGEST_BUDGET_S of CPU
        a pass: a runbook's bad trigger never holds up a key press."""
        self._readings = list(results)
        if not self._readings:  # nothing can match: no need to wait for a worker
            self._matched, self._resume_at = {}, 0
            self._stale = self._passing  # a pass under way would bring back old matches
            self.apply_suggestions({})
            return
        if self._passing:
            # One pass at a time, never cancelled: readings that change faster than a pass
            # takes would otherwise keep every pass from finishing. The next one takes these.
            self._again = True
            return
        self._start_pass()

    def _start_pass(self) -> None:
        self._passing, self._again, self._stale = True, False, False
        self._evaluate(self._readings)

    @work(thread=True, group="suggest", exit_on_error=False)
    def _evaluate(self, readings: list[Any]) -> None:
        found: dict[str, list[str]] = {}
        unfinished = False
        try:
            found, unfinished = self._one_pass(readings)
        finally:  # even when a pass fails, the next one may start
            if not get_current_worker().is_cancelled:
                self.app.call_from_thread(self._pass_done, found, unfinished)

    def _one_pass(self, readings: list[Any]) -> tuple[dict[str, list[str]], bool]:
        """(the ranked suggestions, whether runbooks were left for the next pass)."""
        from runbooks.model import Readings, triggered

        if self._triggers is None:
            self._triggers = {e.id: rb for e in self.entries if (rb := _with_triggers(e)) is not None}
        ids = list(self._triggers)
        # Once a pass: each trigger looks up the readings it names, and evaluates only those
        # that changed since the last pass (a fleet's healthy thousand mostly did not).
        index = Readings(readings, self._verdicts)
        matched = dict(self._matched)
        start, deadline, done = self._resume_at % max(1, len(ids)), time.thread_time() + SUGGEST_BUDGET_S, 0
        for n in range(len(ids)):
            if n and time.thread_time() > deadline:
                break
            rid = ids[(start + n) % len(ids)]
            reasons = triggered(self._triggers[rid], index)
            if reasons:
                matched[rid] = reasons
            else:
                matched.pop(rid, None)
            done = n + 1
        self._matched, self._resume_at = matched, (start + done) % max(1, len(ids))
        # A whole pass replaces the verdicts (those of readings gone are dropped); a partial
        # one keeps the others' for the runbooks still to come, within a bound.
        whole = done == len(ids) or len(self._verdicts) > MAX_VERDICTS
        self._verdicts = index.memo if whole else {**self._verdicts, **index.memo}
        return {rid: matched[rid] for rid in rank_suggestions(matched, self.entries)}, done < len(ids)

    def _pass_done(self, found: dict[str, list[str]], unfinished: bool) -> None:
        """On the event loop: show what a pass found; newer readings or runbooks left over
        start the next pass (the leftovers a little later, to leave the CPU to the screen)."""
        self._passing = False
        if not self.is_attached:
            return
        if not self._stale:
            self.apply_suggestions(found)
        if self._again:
            self._start_pass()
        elif unfinished and self._readings:
            self._passing = True
            self.set_timer(SUGGEST_AGAIN_S, self._start_pass, name="suggest again")

    def apply_suggestions(self, found: dict[str, list[str]]) -> None:
        if list(found) != list(self.suggested):
            self.suggested = found
            self._rebuild()
            self.border_subtitle = f"{len(found)} suggested" if found else ""
            self.post_message(self.Suggested())
        else:
            self.suggested = found

    def on_mount(self) -> None:
        self.border_title = "Runbooks"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(event.option.id))
