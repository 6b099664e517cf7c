"""The runbooks on disk, read only as far as their front matter: what the sidebar lists.

Kept apart from the runbook engine (runbooks.loader parses whole runbooks) and from the
sidebar widget, so listing them costs a few file reads and no imports before the cockpit's
first frame."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent  # the runbooks shipped with warroom, next to this file
SKIPPED_NAMES = ("README", "FORMAT")
SEVERITY_ORDER = {"critical": 0, "high": 1, "major": 1, "medium": 2, "warning": 2, "low": 3, "info": 4}
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.S)


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    id: str
    title: str
    severity: str
    path: Path
    tags: str = ""  # the front matter's tags line, for the filter


def read_front_matter(path: Path) -> dict[str, str]:
    """The `key: value` lines of a Markdown file's front matter (only flat keys are needed here)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    match = FRONT_MATTER.match(text)
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines() if match else ():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t", "-")):
            fields[key.strip()] = value.strip().strip("'\"")
    return fields


def runbook_files(directory: Path) -> list[Path]:
    """The Markdown files of a folder that may be runbooks (not its README or FORMAT notes)."""
    return [p for p in sorted(Path(directory).glob("*.md")) if not p.name.upper().startswith(SKIPPED_NAMES)]


def find_runbooks(dirs: Iterable[Path] = ()) -> list[RunbookEntry]:
    """Runbooks from the bundled folder and the config's `runbook_dirs`, later dirs win by id."""
    found: dict[str, RunbookEntry] = {}
    for directory in (BUNDLED, *dirs):
        for path in runbook_files(directory):
            meta = read_front_matter(path)
            if not meta:
                continue  # notes and format docs next to the runbooks are not runbooks
            runbook_id = meta.get("id") or path.stem
            found[runbook_id] = RunbookEntry(
                runbook_id, meta.get("title") or runbook_id, meta.get("severity") or "", path, meta.get("tags", "")
            )
    return sorted(found.values(), key=lambda e: (SEVERITY_ORDER.get(e.severity.lower(), 5), e.title))
