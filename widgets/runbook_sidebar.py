"""The runbook sidebar: the runbooks on disk, by severity; choosing one asks the app to open it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

BUNDLED = Path(__file__).resolve().parent.parent / "runbooks"
SEVERITY_ORDER = {"critical": 0, "high": 1, "major": 1, "medium": 2, "warning": 2, "low": 3, "info": 4}
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.S)


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    id: str
    title: str
    severity: str
    path: Path


def read_front_matter(path: Path) -> dict[str, str]:
    """The `key: value` lines of a Markdown file's front matter (only flat keys are needed here)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    match = _FRONT.match(text)
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines() if match else ():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t", "-")):
            fields[key.strip()] = value.strip().strip("'\"")
    return fields


def find_runbooks(dirs: Iterable[Path] = ()) -> list[RunbookEntry]:
    """Runbooks from the bundled folder and the config's `runbook_dirs`, later dirs win by id."""
    found: dict[str, RunbookEntry] = {}
    for directory in (BUNDLED, *dirs):
        for path in sorted(Path(directory).glob("*.md")):
            if path.name.upper().startswith("README"):
                continue
            meta = read_front_matter(path)
            if not meta:
                continue  # notes and format docs next to the runbooks are not runbooks
            runbook_id = meta.get("id") or path.stem
            found[runbook_id] = RunbookEntry(
                runbook_id, meta.get("title") or runbook_id, meta.get("severity") or "", path
            )
    return sorted(found.values(), key=lambda e: (SEVERITY_ORDER.get(e.severity.lower(), 5), e.title))


class RunbookSidebar(Vertical):
    """Lists runbooks; Enter on one posts `RunbookSidebar.Opened(runbook_id)`."""

    DEFAULT_CSS = """
    RunbookSidebar { width: 28; border: round $secondary; border-title-style: bold; }
    RunbookSidebar:focus-within { border: double $accent; }
    RunbookSidebar OptionList { border: none; height: 1fr; padding: 0; background: transparent; }
    RunbookSidebar Label { color: $text-muted; padding: 0 1; }
    """

    class Opened(Message):
        """The operator chose a runbook."""

        def __init__(self, runbook_id: str) -> None:
            super().__init__()
            self.runbook_id = runbook_id

    def __init__(self, entries: list[RunbookEntry], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries = entries

    def compose(self) -> ComposeResult:
        if not self.entries:
            yield Label("no runbooks found")
        # Text, not a markup string: titles may contain brackets.
        options = [
            Option(Text.assemble(entry.title, (f"  {entry.severity}" if entry.severity else "", "dim")), id=entry.id)
            for entry in self.entries
        ]
        yield OptionList(*options)

    def on_mount(self) -> None:
        self.border_title = "Runbooks"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(event.option.id))
