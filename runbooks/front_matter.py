"""A runbook's front matter: splitting it off the body and checking its keys (id, title,
severity, tags, triggers), each problem with its line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from runbooks.conditions import ConditionError, compile_condition
from runbooks.model import PROBE_KINDS, SEVERITIES, Problem, Trigger

FRONT_KEYS = {"id", "title", "severity", "tags", "triggers"}
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


class Problems(list[Problem]):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def add(self, line: int | None, message: str) -> None:
        self.append(Problem(self.path, line, message))


def split_front_matter(text: str, problems: Problems) -> tuple[dict[str, Any], str, int]:
    """(front matter, body, number of lines before the body)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        problems.add(1, "expected YAML front matter starting with '---' (id, title, severity)")
        return {}, text, 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        problems.add(1, "front matter is not closed by a '---' line")
        return {}, text, 0
    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: `date: 2024-13-45`
        mark = getattr(exc, "problem_mark", None)
        problems.add(mark.line + 2 if mark else 2, f"front matter is not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return {}, "".join(lines[end + 1 :]), end + 1
    if not isinstance(meta, dict):
        problems.add(2, "front matter must be a mapping of keys (id, title, severity, ...)")
        meta = {}
    return meta, "".join(lines[end + 1 :]), end + 1


def key_line(lines: list[str], key: str, start: int = 0, stop: int | None = None) -> int | None:
    quoted = rf"""['"]?{re.escape(key)}['"]?"""  # "tags": [...] is the same key
    pattern = re.compile(rf"^\s*-?\s*\{{?\s*{quoted}\s*:|(?<![\w-]){quoted}\s*[:=]")
    for number in range(start, min(stop or len(lines), len(lines))):
        if pattern.search(lines[number]):
            return number + 1
    return None


def read_header(meta: dict[str, Any], lines: list[str], problems: Problems, path: Path) -> dict[str, Any]:
    for key in meta:
        if key not in FRONT_KEYS:
            shown = repr(key) if len(repr(key)) <= 60 else f"{repr(key)[:57]}..."
            problems.add(key_line(lines, str(key)) or 2, f"unknown front matter key {shown} (known: {', '.join(sorted(FRONT_KEYS))})")
    out: dict[str, Any] = {}
    rb_id = meta.get("id")
    if not isinstance(rb_id, str) or not _ID.fullmatch(rb_id):
        problems.add(key_line(lines, "id") or 1, f"id: expected lowercase letters, digits and '-', got {rb_id!r}")
    out["id"] = rb_id if isinstance(rb_id, str) else path.stem
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.add(key_line(lines, "title") or 1, "title: required (a short line for the sidebar)")
    out["title"] = str(title or out["id"])
    severity = str(meta.get("severity", "")).lower()
    if severity not in SEVERITIES:
        problems.add(key_line(lines, "severity") or 1, f"severity: expected one of {', '.join(SEVERITIES)}, got {meta.get('severity')!r}")
    out["severity"] = severity
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.add(key_line(lines, "tags") or 2, "tags: expected a list of words, e.g. [postgres, locks]")
        tags = []
    out["tags"] = tuple(tags)
    triggers = []
    raw_triggers = meta.get("triggers", []) or []
    if not isinstance(raw_triggers, list):
        problems.add(key_line(lines, "triggers") or 2, "triggers: expected a list of {target, probe, when}")
        raw_triggers = []
    base = key_line(lines, "triggers") or 1
    for i, trig in enumerate(raw_triggers):
        line = base + 1 + i
        if isinstance(trig, dict) and set(trig) == {"alert"}:
            # `- {alert: PostgresReplicationLag}`: suggested while Alertmanager reports it firing.
            name = trig["alert"]
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", name):
                problems.add(line, f"trigger: alert: expected an alert name such as PostgresReplicationLag, got {name!r}")
                continue
            triggers.append(Trigger("alerts", compile_condition(f"{name!r} in data.firing_names")))
            continue
        if not isinstance(trig, dict) or set(trig) - {"target", "probe", "when"} or "probe" not in trig or "when" not in trig:
            problems.add(line, "trigger: expected {probe: NAME, when: CONDITION} with an optional target, or {alert: NAME}")
            continue
        if not isinstance(trig["probe"], str) or trig["probe"] not in PROBE_KINDS:
            problems.add(line, f"trigger: unknown probe {trig['probe']!r} (known: {', '.join(PROBE_KINDS)})")
            continue
        try:
            triggers.append(Trigger(str(trig["probe"]), compile_condition(str(trig["when"])), str(trig.get("target") or "")))
        except ConditionError as exc:
            problems.add(line, f"trigger: {exc}")
    out["triggers"] = tuple(triggers)
    return out
