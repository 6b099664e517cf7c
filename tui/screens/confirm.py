"""Dialogs of the runbook screens: confirm an action (Cancel is the default) and write a note."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

Preview = Callable[[], Awaitable[Any]]  # -> runbooks.preview.ActionPreview | None


class ConfirmAction(ModalScreen[bool]):
    """Names exactly what will be done to which target; dismisses True only on "Run action".

    Focus starts on Cancel, so a stray Enter declines; Escape declines too. With `preview`
    (a coroutine returning runbooks.preview.ActionPreview), the sessions the action will reach
    are counted and the first SHOWN listed; with `hold` (the action selects its sessions by a
    condition, so only the count says how many), "Run action" stays disabled until counted.
    When there is nothing to do it is disabled for good.
    """

    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "decline", "Cancel", id="confirm.cancel"),
        Binding("left", "app.focus_previous", "Previous button", show=False),
        Binding("right", "app.focus_next", "Next button", show=False),
    ]

    DEFAULT_CSS = """
    ConfirmAction { align: center middle; background: $background 60%; }
    ConfirmAction > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $error; background: $surface; padding: 0 1; }
    ConfirmAction #confirm-title { text-style: bold; color: $error; width: 1fr; }
    ConfirmAction #confirm-what { text-style: bold; margin: 1 0 0 0; }
    ConfirmAction VerticalScroll { height: auto; max-height: 8; margin: 1 0 0 0; }
    ConfirmAction #confirm-sessions { color: $warning; height: auto; }
    ConfirmAction.counted VerticalScroll { max-height: 3; }
    ConfirmAction #confirm-command { color: $text-muted; }
    ConfirmAction Horizontal { height: auto; align-horizontal: right; margin: 1 0 0 0; }
    ConfirmAction Button { margin: 0 0 0 2; }
    """

    def __init__(self, *, step_title: str, what: str, command: str, target: str, preview: Preview | None = None,
                 hold: bool = False) -> None:
        super().__init__()
        self.step_title = step_title
        self.what = what
        self.command = command
        self.target = target
        self.preview = preview
        self.hold = hold and preview is not None
        self.counted: Any = None  # the ActionPreview once counted

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Run this action on {self.target}?", id="confirm-title", markup=False)
            yield Static(Text(self.step_title), id="confirm-step")
            yield Static(Text(f"This will {self.what}."), id="confirm-what")
            sessions = Static(Text("counting the sessions it will reach ...") if self.preview else "", id="confirm-sessions")
            sessions.display = self.preview is not None
            yield sessions
            with VerticalScroll():
                yield Static(Text(self.command), id="confirm-command")
            yield Static(Text("It changes the target and cannot be undone. It is written to the incident journal.",
                              style="italic"))
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Run action", id="run", variant="error", disabled=self.hold)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        if self.preview is not None:
            self.count_sessions()

    @work(exclusive=True, group="confirm-preview", exit_on_error=False)
    async def count_sessions(self) -> None:
        from runbooks.conditions import EvalError, NothingToDo
        from runbooks.preview import SHOWN

        assert self.preview is not None
        what, sessions = self.query_one("#confirm-what", Static), self.query_one("#confirm-sessions", Static)
        try:
            found = await self.preview()
        except NothingToDo as exc:
            # Nothing to act on: the dialog says so and only Cancel remains.
            what.update(Text(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", style="bold"))
            sessions.display = False
            self.query_one("#run", Button).disabled = True
            return
        except EvalError as exc:
            what.update(Text(f"Cannot run it: {exc}", style="bold"))
            sessions.display = False
            self.query_one("#run", Button).disabled = True
            return
        except Exception as exc:  # noqa: BLE001 - a failed count is said, never a crash
            sessions.update(Text(f"could not count its sessions beforehand: {exc}"[:300]))
        else:
            self.counted = found
            if found is None:
                sessions.display = False
            elif found.count is None:
                what.update(Text(f"This will {found.headline}."))
                sessions.update(Text(found.note))
            else:
                what.update(Text(f"This will {found.headline}:"))
                sessions.update(Text("\n".join(found.lines(SHOWN))))
                self.add_class("counted")
        self.query_one("#run", Button).disabled = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "run")

    def action_decline(self) -> None:
        self.dismiss(False)


class NoteDialog(ModalScreen[str | None]):
    """One line of free text for a step's note; Enter saves, Escape discards."""

    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "discard", "Discard", id="note.discard")]

    DEFAULT_CSS = """
    NoteDialog { align: center middle; background: $background 60%; }
    NoteDialog > Vertical { width: 76; max-width: 100%; height: auto; border: round $accent;
        background: $surface; padding: 0 1; }
    """

    def __init__(self, step_title: str) -> None:
        super().__init__()
        self.step_title = step_title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Note on: {self.step_title}", markup=False)
            yield Input(placeholder="what you saw or did (Enter saves, Esc discards)", id="note-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_discard(self) -> None:
        self.dismiss(None)
