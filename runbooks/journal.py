"""The incident journal: every alarm, step run, mark, note and action with timestamps, in SQLite.

An incident is a postmortem's first draft: the cockpit opens one at the first reading that is
not ok (titled from it), records each symptom's first and last sighting, every step, action and
note, and the operator closes it with a one-line resolution (`warroom journal close`, or the
cockpit's key). `export_markdown` writes it up in sections: Timeline, Symptoms seen, Actions,
Notes, warroom's own errors, Resolution.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probes.secrets import redact

JOURNAL_NAME = "journal.sqlite3"
# symptom: a target reading turned warn/fail/error (or changed between them); symptom-end: it
# was ok again ("cleared") or still seen when the cockpit stopped or the incident closed;
# warroom-error: warroom's own failure (a crashed backend, a step that outlived its timeout).
KINDS = ("run", "probe", "step", "manual", "note", "action", "action-declined", "symptom", "symptom-end", "warroom-error")
RESOLUTION_CHARS = 500
TITLE_CHARS = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at REAL NOT NULL,
  ended_at REAL,
  env TEXT NOT NULL,
  runbooks TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL DEFAULT 'open',
  title TEXT NOT NULL DEFAULT '',
  resolution TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  ts REAL NOT NULL,
  kind TEXT NOT NULL,
  runbook_id TEXT NOT NULL DEFAULT '',
  step_id TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT '',
  summary TEXT NOT NULL DEFAULT '',
  data TEXT NOT NULL DEFAULT '{}',
  duration_ms REAL
);
CREATE INDEX IF NOT EXISTS events_incident ON events(incident_id, ts);
"""


def data_dir() -> Path:
    """WARROOM_DATA_DIR, else the platform's user data dir (~/.local/share/warroom)."""
    override = os.environ.get("WARROOM_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("warroom"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """Redact every string in event data: a DSN may hide anywhere in a driver's message."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    started_at: float
    env: str
    runbooks: tuple[str, ...]
    status: str
    title: str = ""
    ended_at: float | None = None
    resolution: str = ""

    @property
    def open(self) -> bool:
        return self.status == "open"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at) if self.ended_at else None,
                "env": self.env, "runbooks": list(self.runbooks), "status": self.status, "title": self.title,
                "resolution": self.resolution}


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    incident_id: int
    ts: float
    kind: str
    runbook_id: str
    step_id: str
    status: str
    summary: str
    data: dict[str, Any]
    duration_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {"time": _iso(self.ts), "ts": self.ts, "kind": self.kind, "runbook": self.runbook_id,
                "step": self.step_id, "status": self.status, "summary": self.summary,
                "duration_ms": self.duration_ms, "data": self.data}


@dataclass
class StepState:
    """What the checklist shows for a step when an incident is resumed."""

    status: str
    summary: str
    ts: float
    notes: list[str] = field(default_factory=list)


class Journal:
    """One SQLite file (WAL mode, so a viewer can read while the cockpit writes)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else data_dir() / JOURNAL_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Journals written before incidents had a resolution get the column (empty)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(incidents)")}
        if "resolution" not in columns:
            try:
                self.db.execute("ALTER TABLE incidents ADD COLUMN resolution TEXT NOT NULL DEFAULT ''")
            except sqlite3.OperationalError:  # another process added it a moment ago
                pass

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------

    def start_incident(self, env: str, runbooks: list[str] | tuple[str, ...] = (), title: str = "",
                       started_at: float | None = None) -> int:
        cur = self.db.execute("INSERT INTO incidents (started_at, env, runbooks, title) VALUES (?, ?, ?, ?)",
                              (started_at or time.time(), env, json.dumps(list(runbooks)), _one_line(title, TITLE_CHARS)))
        return int(cur.lastrowid or 0)

    def add_runbook(self, incident_id: int, runbook_id: str) -> None:
        incident = self.incident(incident_id)
        if incident and runbook_id not in incident.runbooks:
            self.db.execute("UPDATE incidents SET runbooks = ? WHERE id = ?",
                            (json.dumps([*incident.runbooks, runbook_id]), incident_id))

    def close_incident(self, incident_id: int, status: str = "resolved", resolution: str = "") -> None:
        """End an incident: its status (resolved, or a headless run's passed / failed) and the
        operator's one-line resolution, recorded in its timeline too."""
        text = _one_line(resolution, RESOLUTION_CHARS)
        self.db.execute("UPDATE incidents SET status = ?, ended_at = ?, resolution = ? WHERE id = ?",
                        (status, time.time(), text, incident_id))
        if text:
            self.record(incident_id, "run", status="closed", summary=f"incident closed: {text}")

    def reopen_incident(self, incident_id: int) -> None:
        """`--resume` of a closed incident: open again (its old resolution stays in the timeline)."""
        incident = self.incident(incident_id)
        if incident is not None and not incident.open:
            self.db.execute("UPDATE incidents SET status = 'open', ended_at = NULL, resolution = '' WHERE id = ?", (incident_id,))
            self.record(incident_id, "run", status="reopened", summary=f"incident reopened (was {incident.status}"
                        f"{': ' + incident.resolution if incident.resolution else ''})")

    def open_incident(self, env: str) -> Incident | None:
        """The environment's newest incident still open (the cockpit joins it instead of
        opening another one for the same alarms)."""
        row = self.db.execute("SELECT * FROM incidents WHERE env = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
                              (env,)).fetchone()
        return self._incident(row) if row else None

    def record(self, incident_id: int, kind: str, *, runbook_id: str = "", step_id: str = "", status: str = "",
               summary: str = "", data: dict[str, Any] | None = None, duration_ms: float | None = None,
               ts: float | None = None) -> int:
        if kind not in KINDS:
            raise ValueError(f"unknown journal event kind {kind!r} (known: {', '.join(KINDS)})")
        cur = self.db.execute(
            "INSERT INTO events (incident_id, ts, kind, runbook_id, step_id, status, summary, data, duration_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (incident_id, ts or time.time(), kind, runbook_id, step_id, status, redact(summary),
             json.dumps(_clean(data or {}), default=str), duration_ms),
        )
        return int(cur.lastrowid or 0)

    def record_outcome(self, incident_id: int, runbook_id: str, outcome: Any, *, kind: str = "probe") -> int:
        """A runbooks.runner.StepOutcome (its step's kind kept: the export lists actions apart)."""
        data: dict[str, Any] = {"value": outcome.value, "data": outcome.data} if outcome.data or outcome.value is not None else {}
        if getattr(outcome, "kind", ""):
            data["step_kind"] = outcome.kind
        return self.record(incident_id, kind, runbook_id=runbook_id, step_id=outcome.step_id, status=str(outcome.status),
                           summary=outcome.summary, data=data, duration_ms=round(outcome.duration_ms, 2), ts=outcome.timestamp)

    def mark(self, incident_id: int, runbook_id: str, step_id: str, status: str, note: str = "") -> int:
        """The operator marked a manual step pass / fail / skipped."""
        return self.record(incident_id, "manual", runbook_id=runbook_id, step_id=step_id, status=status, summary=note)

    def note(self, incident_id: int, text: str, *, runbook_id: str = "", step_id: str = "") -> int:
        return self.record(incident_id, "note", runbook_id=runbook_id, step_id=step_id, summary=text)

    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _incident(row: tuple[Any, ...]) -> Incident:
        return Incident(row[0], row[1], row[3], tuple(json.loads(row[4])), row[5], row[6], row[2], row[7] if len(row) > 7 else "")

    def incident(self, incident_id: int) -> Incident | None:
        row = self.db.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return self._incident(row) if row else None

    def incidents(self, limit: int = 50) -> list[Incident]:
        rows = self.db.execute("SELECT * FROM incidents ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._incident(r) for r in rows]

    def last_incident(self) -> Incident | None:
        found = self.incidents(1)
        return found[0] if found else None

    def events(self, incident_id: int) -> list[Event]:
        rows = self.db.execute("SELECT * FROM events WHERE incident_id = ? ORDER BY ts, id", (incident_id,)).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9]) for r in rows]

    def checklist_state(self, incident_id: int, runbook_id: str | None = None) -> dict[str, dict[str, StepState]]:
        """runbook id -> step id -> the latest status of that step and its notes, to resume."""
        state: dict[str, dict[str, StepState]] = {}
        for ev in self.events(incident_id):
            if not ev.step_id or (runbook_id and ev.runbook_id != runbook_id):
                continue
            steps = state.setdefault(ev.runbook_id, {})
            if ev.kind == "note":
                steps.setdefault(ev.step_id, StepState("pending", "", ev.ts)).notes.append(ev.summary)
            elif ev.kind != "run":
                old = steps.get(ev.step_id)
                steps[ev.step_id] = StepState(ev.status, ev.summary, ev.ts, old.notes if old else [])
        return state

    # --- export ----------------------------------------------------------------------------

    def export_json(self, incident_id: int) -> dict[str, Any]:
        incident = self.incident(incident_id)
        if incident is None:
            raise LookupError(f"no incident {incident_id} in {self.path}")
        events = self.events(incident_id)
        return {"incident": incident.to_json(), "events": [e.to_json() for e in events]}

    def export_markdown(self, incident_id: int) -> str:
        """The incident as a postmortem's first draft (see runbooks.journal_export)."""
        from runbooks.journal_export import markdown

        incident = self.incident(incident_id)
        if incident is None:
            raise LookupError(f"no incident {incident_id} in {self.path}")
        return markdown(incident, self.events(incident_id))


def _one_line(text: str, limit: int) -> str:
    """Free text for a title or resolution: one line, bounded, without secrets."""
    line = re.sub(r"\s+", " ", redact(text or "")).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"
