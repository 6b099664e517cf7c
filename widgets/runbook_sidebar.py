"""The runbook sidebar: the runbooks on disk, by severity; choosing one asks the app to open it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from runbooks.catalog import FRONT_MATTER, RunbookEntry, rank_suggestions

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "major": "red", "medium": "yellow", "warning": "yellow"}

def _with_triggers(entry: RunbookEntry) -> Any:
    """Only the front matter's triggers, as a runbooks.model.Runbook: parsing whole runbooks
    would hold up the first readings; a runbook with bad triggers simply suggests nothing."""
    import yaml

    from runbooks.conditions import ConditionError, compile_condition
    from runbooks.model import Runbook, Trigger

    try:
        match = FRONT_MATTER.match(entry.path.read_text(encoding="utf-8"))
        meta = yaml.safe_load(match.group(1)) if match else None
        triggers = tuple(Trigger(str(t["probe"]), compile_condition(str(t["when"])), str(t.get("target") or ""))
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
    RunbookSidebar Input:focus { background: $boost; }
    """

    class Opened(Message):
        """The operator chose a runbook."""

        def __init__(self, runbook_id: str) -> None:
            super().__init__()
            self.runbook_id = runbook_id

    def __init__(self, entries: list[RunbookEntry], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries = entries
        self.filter_text = ""
        # runbook id -> the trigger readings that match, most specific first (rank_suggestions)
        self.suggested: dict[str, list[str]] = {}
        self._triggers: dict[str, Any] | None = None  # runbook id -> runbooks.model.Runbook, loaded once

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
        return Text.assemble(mark, (title, "bold" if entry.id in self.suggested else ""))

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
        """Enter in the filter opens the first match (`/lock⏎`); with no match, stays put."""
        event.stop()
        options = self.query_one(OptionList)
        if options.option_count:
            options.highlighted = 0
            options.focus()
            first = options.get_option_at_index(0)
            if first.id and self.filter_text.strip():
                self.post_message(self.Opened(first.id))

    def action_filter(self) -> None:
        self.display = True
        self.query_one(Input).focus()

    def key_escape(self, event: events.Key) -> None:
        """Esc in the filter clears it and goes back to the list."""
        filter_input = self.query_one(Input)
        if filter_input.has_focus and filter_input.value:
            event.stop()
            filter_input.value = ""
            self.query_one(OptionList).focus()

    @property
    def first_suggestion(self) -> str | None:
        """The most specific runbook the readings point to, if any."""
        return next(iter(self.suggested), None)

    def suggest(self, results: Iterable[Any]) -> None:
        """Highlight the runbooks whose `triggers` match current ProbeResults, most specific first."""
        from runbooks.model import triggered

        if self._triggers is None:
            self._triggers = {e.id: rb for e in self.entries if (rb := _with_triggers(e)) is not None}
        readings = list(results)
        matched = {rid: reasons for rid, rb in self._triggers.items() if (reasons := triggered(rb, readings))}
        found = {rid: matched[rid] for rid in rank_suggestions(matched, self.entries)}
        if list(found) != list(self.suggested):
            self.suggested = found
            self._rebuild()
            self.border_subtitle = f"{len(found)} suggested" if found else ""
        else:
            self.suggested = found

    def on_mount(self) -> None:
        self.border_title = "Runbooks"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(event.option.id))
