"""The runbooks on disk, read only as far as their front matter: what the sidebar lists.

Kept apart from the runbook engine (runbooks.loader parses whole runbooks) and from the
sidebar widget, so listing them costs a few file reads and no imports before the cockpit's
first frame."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent  # the runbooks shipped with warroom, next to this file
SKIPPED_NAMES = ("README", "FORMAT")
SEVERITY_ORDER = {"critical": 0, "high": 1, "major": 1, "medium": 2, "warning": 2, "low": 3, "info": 4}
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.S)
# A step's `on_pass` / `on_fail` that hands over to another runbook, in a step comment, a block's
# info string or a probe block's YAML: found without parsing the whole runbook.
HANDOVER = re.compile(r"""\bon_(?:pass|fail)\s*[:=]\s*["']?goto\s+runbook:([a-z0-9][a-z0-9_-]*)""")


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    id: str
    title: str
    severity: str
    path: Path
    tags: str = ""  # the front matter's tags line, for the filter
    handovers: tuple[str, ...] = ()  # the runbooks its steps hand over to (`goto runbook:ID`)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def read_front_matter(path: Path) -> dict[str, str]:
    """The `key: value` lines of a Markdown file's front matter (only flat keys are needed here)."""
    return _front_matter(_read(path))


def _front_matter(text: str) -> dict[str, str]:
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
            text = _read(path)
            meta = _front_matter(text)
            if not meta:
                continue  # notes and format docs next to the runbooks are not runbooks
            runbook_id = meta.get("id") or path.stem
            found[runbook_id] = RunbookEntry(
                runbook_id, meta.get("title") or runbook_id, meta.get("severity") or "", path, meta.get("tags", ""),
                tuple(dict.fromkeys(HANDOVER.findall(text))),
            )
    return sorted(found.values(), key=severity_key)


def severity_key(entry: RunbookEntry) -> tuple[int, str]:
    return SEVERITY_ORDER.get(entry.severity.lower(), 5), entry.title


def rank_suggestions(found: Mapping[str, Sequence[str]], entries: Iterable[RunbookEntry]) -> list[str]:
    """The suggested runbooks, most specific first (runbooks/FORMAT.md, "Which runbook is
    suggested first"). `found`: runbook id -> the trigger readings that match.

    1. A runbook that another suggested runbook hands over to comes before it: the triage
       runbook would send the operator there anyway. Hand-overs count through other suggested
       runbooks; two that reach each other are not ordered by this rule.
    2. Then the one with more matching trigger readings (more of its symptoms are present).
    3. Then by severity, then by title.
    """
    by_id = {e.id: e for e in entries if e.id in found}
    reach: dict[str, set[str]] = {}
    for start in by_id:  # a few suggested runbooks: a walk from each is cheap
        seen, todo = set(), [start]
        while todo:
            for nxt in by_id[todo.pop()].handovers:
                if nxt in by_id and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen - {start}

    def key(rid: str) -> tuple[int, int, int, str]:
        senders = sum(1 for other in by_id if rid in reach[other] and other not in reach[rid])
        severity, title = severity_key(by_id[rid])
        return -senders, -len(found[rid]), severity, title

    return sorted(by_id, key=key)
