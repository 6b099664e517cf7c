"""Reading runbook Markdown files into the model; every problem names its file and line."""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from runbooks.catalog import BUNDLED as BUNDLED_DIR
from runbooks.catalog import runbook_files
from runbooks.classify import (
    SqlSyntaxError,
    classify_docker,
    classify_redis,
    classify_sql,
    split_command,
    statements,
    tokenize,
)
from runbooks.conditions import ConditionError, compile_condition, placeholder, template_fields
from runbooks.front_matter import Problems, read_header, split_front_matter
from runbooks.http_block import PROBE_HTTP_KEYS, check_http_block, check_probe_http_keys
from runbooks.model import (
    DEFAULT_PASS,
    HANDOVER_PREFIX,
    PROBE_KINDS,
    SEVERITIES,
    Branch,
    Problem,
    Runbook,
    Step,
    slugify,
)
from runbooks.verdict import Classification

RUNNABLE = ("probe", "sql", "redis", "docker", "promql", "http")
STEP_KEYS = {"id", "target", "probe", "pass", "report", "timeout", "on_pass", "on_fail"}
# A step's `timeout=` may shorten or lengthen its wait, up to this: the cockpit shows a running
# step until it ends, and a read that needs longer should be made cheaper (or be manual).
MAX_STEP_TIMEOUT_S = 60.0
_STEP_COMMENT = re.compile(r"<!--\s*step:?(.*?)-->", re.S)
_RUNBOOK_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")  # as front_matter checks `id:`


class LoadError(Exception):
    """A runbook that cannot be used: unknown id or a malformed file (`file:line: ...`)."""


def _attributes(info: str, line: int, problems: Problems) -> dict[str, Any]:
    try:
        words = shlex.split(info)[1:]
    except ValueError as exc:
        problems.add(line, f"cannot read the block's settings {info!r}: {exc}")
        return {}
    attrs: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            problems.add(line, f"block setting {word!r}: expected key=value")
        else:
            attrs[key] = value
    return attrs


def _branch(value: Any, line: int, problems: Problems) -> Branch:
    text = str(value or "next").strip()
    if text in ("next", "stop"):
        return Branch(text)  # type: ignore[arg-type]
    verb, _, target = text.partition(" ")
    if verb != "goto" or not target.strip():
        problems.add(line, f"branch {text!r}: expected next, stop, 'goto STEP-ID|SECTION' or 'goto runbook:ID'")
        return Branch()
    target = target.strip()
    if target.startswith(HANDOVER_PREFIX):  # a hand-over to another runbook, checked by load_runbooks
        runbook_id = target.removeprefix(HANDOVER_PREFIX).strip()
        if not _RUNBOOK_ID.fullmatch(runbook_id):
            problems.add(line, f"branch {text!r}: expected 'goto runbook:ID' with a runbook id (lowercase letters, digits and '-')")
            return Branch()
        return Branch("runbook", runbook_id)
    return Branch("goto", target)


class _StepBuilder:
    """Collects one numbered list item: its lines, its section and its runnable block."""

    def __init__(self, start: int, end: int, section: str) -> None:
        self.start, self.end, self.section = start, end, section  # body line range, 0-based
        self.fences: list[tuple[str, str, int, int]] = []  # (info, content, start, end)


def _collect(body: str, offset: int, problems: Problems) -> tuple[list[_StepBuilder], list[tuple[str, int, int]]]:
    """Numbered top-level list items and headings (slug, file line, level) of the body."""
    md = MarkdownIt("commonmark").enable("table")
    builders: list[_StepBuilder] = []
    headings: list[tuple[str, int, int]] = []
    lists: list[str] = []
    section, current, title_next = "", None, None
    for tok in md.parse(body):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(tok.type)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                current = None
        elif tok.type == "heading_open":
            title_next = (int(tok.tag[1]), (tok.map or [0])[0])
        elif tok.type == "inline" and title_next:
            section = tok.content.strip()
            headings.append((slugify(section), offset + title_next[1] + 1, title_next[0]))
            title_next = None
        elif tok.type == "list_item_open" and lists == ["ordered_list_open"] and tok.map:
            current = _StepBuilder(tok.map[0], tok.map[1], section)
            builders.append(current)
        elif tok.type == "fence" and tok.map:
            kind = tok.info.strip().split(" ", 1)[0].lower() if tok.info.strip() else ""
            if kind not in RUNNABLE:
                continue
            if current is None:
                problems.add(offset + tok.map[0] + 1, f"a ```{kind} block must be inside a numbered step (nothing runnable is ignored)")
            else:
                current.fences.append((tok.info.strip(), tok.content, tok.map[0], tok.map[1]))
    return builders, headings


def _step_text(body_lines: list[str], b: _StepBuilder) -> tuple[str, str]:
    fence_lines = {i for _, _, s, e in b.fences for i in range(s, e)}
    kept = [body_lines[i] for i in range(b.start, min(b.end, len(body_lines))) if i not in fence_lines]
    if kept:
        kept[0] = re.sub(r"^\s*\d+[.)]\s?", "", kept[0])
    text = _STEP_COMMENT.sub("", textwrap.dedent("".join(kept[:1]) + textwrap.dedent("".join(kept[1:])))).strip()
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    bold = re.match(r"\s*\*\*(.+?)\*\*", first)  # "**Is anything blocked?** Because ..."
    title = re.sub(r"[*`_]{1,2}", "", bold.group(1) if bold else first).strip()
    return text, title


def _build_step(b: _StepBuilder, index: int, body_lines: list[str], offset: int, problems: Problems) -> dict[str, Any]:
    """A step's fields (before ids and branches are resolved)."""
    text, title = _step_text(body_lines, b)
    line = offset + b.start + 1
    fields: dict[str, Any] = {"index": index, "title": title or f"Step {index + 1}", "text": text,
                              "section": b.section, "line": line, "kind": "manual"}
    settings: dict[str, Any] = {}
    comment = _STEP_COMMENT.search("".join(body_lines[b.start : b.end]))
    if comment:
        settings.update(_attributes("step " + comment.group(1).strip(), line, problems))
    if len(b.fences) > 1:
        problems.add(offset + b.fences[1][2] + 1, "a step has at most one runnable block; split it into two steps")
    if b.fences:
        info, content, start, _ = b.fences[0]
        line = offset + start + 1
        block = info.split(" ", 1)[0].lower()
        fields.update(block=block, line=line)
        settings.update(_attributes(info, line, problems))
        if block == "probe":
            try:
                data = yaml.safe_load(content) or {}
            except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: `date: 2024-13-45`
                mark = getattr(exc, "problem_mark", None)
                problems.add(line + 1 + (mark.line if mark else 0), f"probe block is not valid YAML: {getattr(exc, 'problem', None) or exc}")
                data = {}
            if not isinstance(data, dict):
                problems.add(line + 1, "probe block: expected YAML keys (target, probe, pass, ...)")
                data = {}
            settings.update(data)
        else:
            fields["command"] = content.strip()
            # Lines of the block's own problems count from its first non-blank line.
            fields["first_line"] = line + 1 + content[: len(content) - len(content.lstrip())].count("\n")
    http_probe = fields.get("block") == "probe" and settings.get("probe") == "http"
    for key in settings:
        if http_probe and key in (*PROBE_HTTP_KEYS, "headers_env"):
            continue  # checked with the HTTP keys in _finish_step
        if key not in STEP_KEYS or (not b.fences and key not in ("id", "on_pass", "on_fail")):
            problems.add(line, f"unknown step setting {key!r} (known: {', '.join(sorted(STEP_KEYS))})")
    fields["settings"] = settings
    return fields


def _finish_step(f: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """Validate target/probe/conditions/templates and classify the command."""
    s, line, block = f.pop("settings"), f["line"], f.get("block", "")
    first_line = f.pop("first_line", line + 1)
    out: dict[str, Any] = {k: v for k, v in f.items()}
    out["on_pass"] = _branch(s.get("on_pass"), line, problems)
    out["on_fail"] = _branch(s.get("on_fail"), line, problems)
    if not block:
        return out
    out["target"] = str(s.get("target") or "")
    if not out["target"]:
        problems.add(line, f"```{block} step needs target=NAME (a target of the config)")
    if "timeout" in s:
        try:
            seconds = float("nan") if isinstance(s["timeout"], bool) else float(s["timeout"])
        except (TypeError, ValueError, OverflowError):
            seconds = float("nan")
        if 0 < seconds <= MAX_STEP_TIMEOUT_S:
            out["timeout"] = seconds
        else:
            problems.add(line, f"timeout: expected seconds above 0 and at most {MAX_STEP_TIMEOUT_S:g} (the ceiling), got {str(s['timeout'])[:40]!r}")
    kind = block
    if block == "probe":
        out["probe"] = str(s.get("probe") or "")
        if out["probe"] not in PROBE_KINDS:
            problems.add(line, f"unknown probe {out['probe']!r} (known: {', '.join(PROBE_KINDS)})")
        if out["probe"] == "http":
            out["http"] = check_probe_http_keys(s, out["target"], line, problems)
    elif block == "http":
        kind = check_http_block(out, first_line, problems)
    elif block == "promql":
        # Prometheus's query API evaluates and reads; nothing a query says can change a thing.
        out["classification"] = Classification("read", "a PromQL instant query (Prometheus's query API only reads)")
        if not out.get("command"):
            problems.add(line, "```promql: the block holds no query")
        try:
            template_fields(out.get("command", ""))
        except ConditionError as exc:
            problems.add(line, f"```promql: {exc}")
    else:
        command = out.get("command", "")
        try:
            template_fields(command)
            filled = placeholder(command)
            if block == "sql":
                verdict = classify_sql(filled)
                if len(statements(tokenize(filled))) > 1:
                    problems.add(line, "```sql: one statement per block (split it into steps)")
            else:
                words = split_command(filled)
                verdict = classify_redis(words) if block == "redis" else classify_docker(words)
                out["words"] = tuple(split_command(command)) if "{{" not in command else tuple(words)
            out["classification"] = verdict
            if verdict.verdict == "refused":
                problems.add(line, f"```{block}: refused: {verdict.reason}")
            elif verdict.verdict == "action":
                kind = "action"
        except (SqlSyntaxError, ValueError) as exc:
            problems.add(line, f"```{block}: {exc}")
    out["kind"] = kind
    if kind != "action" or (block == "http" and s.get("pass")):  # an HTTP action's answer is graded too
        try:
            out["passes"] = compile_condition(str(s.get("pass") or DEFAULT_PASS[block]))
        except ConditionError as exc:
            problems.add(line, f"pass: {exc}")
    if s.get("report"):
        out["report"] = str(s["report"])
        try:
            template_fields(out["report"])
        except ConditionError as exc:
            problems.add(line, f"report: {exc}")
    return out


def _resolve(target: str, ids: set[str], sections: dict[str, str]) -> str | None:
    if target in ids:
        return target
    if target in sections:
        return sections[target]
    matches = {sid for slug, sid in sections.items() if slug.startswith(target + "-")}
    return matches.pop() if len(matches) == 1 else None


def parse_runbook(text: str, path: Path | str) -> tuple[Runbook | None, list[Problem]]:
    """One runbook from its text; (None, problems) when anything is wrong."""
    path = Path(path)
    problems = Problems(path)
    meta, body, offset = split_front_matter(text, problems)
    if problems:  # without readable front matter every header check would only add noise
        return None, list(problems)
    header = read_header(meta, text.splitlines()[:offset], problems, path)  # keys are looked up in the front matter only
    builders, headings = _collect(body, offset, problems)
    body_lines = body.splitlines(keepends=True)
    fields = [_finish_step(_build_step(b, i, body_lines, offset, problems), problems) for i, b in enumerate(builders)]
    ids: list[str] = []
    for f, b in zip(fields, builders, strict=True):
        explicit = _explicit_id(b, body_lines)
        base = explicit or slugify(" ".join(f["title"].split()[:5])) or f"step-{f['index'] + 1}"
        if explicit and explicit in ids:
            problems.add(f["line"], f"duplicate step id {explicit!r}")
        step_id, n = base, 2
        while step_id in ids:
            step_id, n = f"{base}-{n}", n + 1
        ids.append(step_id)
    # A section's goto target is its first step; headings are in document order.
    sections: dict[str, str] = {}
    for h, (slug, hline, level) in enumerate(headings):
        end = next((ln for s2, ln, lv in headings[h + 1 :] if lv <= level), None)
        first = next((ids[i] for i, f in enumerate(fields) if f["line"] > hline and (end is None or f["line"] < end)), "")
        sections.setdefault(slug, first)
    steps = []
    for f, step_id in zip(fields, ids, strict=True):
        for key in ("on_pass", "on_fail"):
            br: Branch = f[key]
            if br.action == "goto":
                resolved = _resolve(br.target, set(ids), sections)
                if not resolved:
                    problems.add(f["line"], f"{key}: goto {br.target!r}: no such step id or section with steps")
                    f[key] = Branch()
                else:
                    f[key] = Branch("goto", resolved)
        steps.append(Step(id=step_id, **f))
    if problems:
        return None, list(problems)
    return Runbook(header["id"], header["title"], header["severity"], path, header["tags"], header["triggers"], tuple(steps), body), []


def _explicit_id(b: _StepBuilder, body_lines: list[str]) -> str:
    source = "".join(body_lines[b.start : b.end])
    comment = _STEP_COMMENT.search(source)
    for info, content, _, _ in b.fences:
        match = re.search(r"\bid=([\w-]+)", info)
        if match:
            return match.group(1)
        if info.split(" ", 1)[0].lower() == "probe":
            found = re.search(r"^\s*id:\s*['\"]?([\w-]+)", content, re.M)
            if found:
                return found.group(1)
    if comment:
        match = re.search(r"\bid=([\w-]+)", comment.group(1))
        if match:
            return match.group(1)
    return ""


def load_file(path: Path | str) -> tuple[Runbook | None, list[Problem]]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(path, None, f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(path, line, f"not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})")]
    return parse_runbook(text, path)


def load_runbooks(dirs: Iterable[Path] = (), *, bundled: bool = True) -> tuple[list[Runbook], list[Problem]]:
    """Every runbook of the bundled folder then `dirs` (later folders replace by id)."""
    found: dict[str, Runbook] = {}
    problems: list[Problem] = []
    for directory in ([BUNDLED_DIR] if bundled else []) + [Path(d) for d in dirs]:
        if not Path(directory).is_dir():
            problems.append(Problem(Path(directory), None, "runbook folder does not exist"))
            continue
        seen: set[str] = set()
        for path in runbook_files(directory):
            runbook, found_problems = load_file(path)
            problems += found_problems
            if runbook is None:
                continue
            if runbook.id in seen:
                problems.append(Problem(path, 1, f"duplicate runbook id {runbook.id!r} in {directory}"))
                continue
            seen.add(runbook.id)
            found[runbook.id] = runbook
    problems += _handover_problems(found)
    return sorted(found.values(), key=lambda r: (SEVERITIES.index(r.severity), r.title)), problems


def _handover_problems(found: dict[str, Runbook]) -> list[Problem]:
    """`goto runbook:ID` must name another runbook that loaded (the step still works: the
    cockpit says the runbook is missing when the operator follows it)."""
    problems = []
    for runbook in found.values():
        for step in runbook.steps:
            for key in ("on_pass", "on_fail"):
                target = getattr(step, key).handover
                if target == runbook.id:
                    problems.append(Problem(runbook.path, step.line, f"{key}: goto runbook:{target}: a runbook cannot hand over to itself"))
                elif target and target not in found:
                    known = ", ".join(sorted(found)) or "none"
                    problems.append(Problem(runbook.path, step.line, f"{key}: goto runbook:{target}: no such runbook (known: {known})"))
    return problems


def find_runbook(ref: str, dirs: Iterable[Path] = ()) -> Runbook:
    """A runbook by id or by file path; LoadError with `file:line: ...` or the known ids."""
    candidate = Path(ref)
    if ref.endswith(".md") or candidate.exists():
        if not candidate.is_file():
            raise LoadError(f"{ref}: no such runbook file")
        runbook, problems = load_file(candidate)
        if runbook is None:
            raise LoadError("\n".join(str(p) for p in problems))
        return runbook
    runbooks, problems = load_runbooks(dirs)
    for runbook in runbooks:
        if runbook.id == ref:
            return runbook
    broken = [p for p in problems if p.path.stem == ref]
    if broken:
        raise LoadError("\n".join(str(p) for p in broken))
    known = ", ".join(r.id for r in runbooks) or "none"
    raise LoadError(f"unknown runbook {ref!r} (known: {known})")
