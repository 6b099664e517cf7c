"""`warroom runbook list/show/run` and `warroom journal list/export/close`: runbooks without the UI."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from probes.secrets import redact
from runbooks.copyable import shell_block, step_command
from tui.cli import EXIT_OK, EXIT_PROBLEM, UsageError


def _config(args: Any, *, required: bool) -> Any:
    """The config when one is given (or required); list/show work without any."""
    from probes.config import default_config_path, load_config

    path = getattr(args, "config", None)
    if path is None and not required and not default_config_path().exists():
        return None
    return load_config(path)


def _runbook(ref: str, dirs: tuple[Path, ...]) -> Any:
    from runbooks.loader import LoadError, find_runbook

    try:
        return find_runbook(ref, dirs)
    except LoadError as exc:
        raise UsageError(str(exc)) from None


def _describe(step: Any) -> str:
    bits = []
    if step.target:
        bits.append(f"{step.target} {step.probe}".strip())
    if step.passes is not None:
        bits.append(f"pass: {step.passes.text}")
    if str(step.on_pass) != "next":
        bits.append(f"on pass: {step.on_pass}")
    if str(step.on_fail) != "next":
        bits.append(f"on fail: {step.on_fail}")
    if step.is_action and step.classification:
        bits.append(f"ACTION: {step.classification.reason}")
    return "; ".join(bits)


def _show(runbook: Any) -> str:
    lines = [f"{runbook.id}: {runbook.title}  [{runbook.severity}]  {runbook.path}"]
    if runbook.tags:
        lines.append(f"tags: {', '.join(runbook.tags)}")
    for trig in runbook.triggers:
        lines.append(f"suggested when {trig}")
    section = None
    for step in runbook.steps:
        if step.section != section:
            section = step.section
            lines.append(f"\n## {section}")
        lines.append(f"{step.index + 1:>3}. [{step.kind}] {step.id}: {step.title}")
        # A manual step's command too (its first shell block): what `y` copies in the checklist.
        command = step.command or shell_block(step.text)
        if command:
            lines += [f"         | {ln}" for ln in command.splitlines()]
        detail = _describe(step)
        if detail:
            lines.append(f"         {detail}")
    return "\n".join(lines)


def _print_json(value: Any) -> None:
    print(redact(json.dumps(value, indent=2, default=str)))


def main(args: Any) -> int:
    from runbooks.loader import load_runbooks

    command = args.runbook_command
    config = _config(args, required=command == "run")
    dirs = config.runbook_dirs if config else ()
    if command == "list":
        runbooks, problems = load_runbooks(dirs)
        if args.json:
            _print_json({"runbooks": [r.to_json(steps=False) for r in runbooks], "problems": [str(p) for p in problems]})
        else:
            width = max((len(r.id) for r in runbooks), default=2)
            for r in runbooks:
                print(f"{r.id:<{width}}  {r.severity:<8}  {len(r.steps):>2} steps  {r.title}")
        for problem in problems:
            print(f"warroom: {problem}", file=sys.stderr)
        return EXIT_OK
    runbook = _runbook(args.runbook, dirs)
    if command == "show":
        if args.json:
            shown = runbook.to_json()
            for step, entry in zip(runbook.steps, shown.get("steps", []), strict=False):
                entry["copy"] = step_command(step) or None  # what `y` copies
            _print_json(shown)
        else:
            print(_show(runbook))
        return EXIT_OK
    env = config.environment(getattr(args, "env", None))
    return asyncio.run(_run(runbook, env, args))


def _line(outcome: Any, width: int) -> str:
    took = f"{outcome.duration_ms:.0f}ms" if outcome.duration_ms else ""
    return f"{str(outcome.status):<8} {outcome.step_id:<{width}} {took:>7}  {outcome.summary}"


async def _run(runbook: Any, env: Any, args: Any) -> int:
    from runbooks.journal import Journal
    from runbooks.runner import RunContext, run_runbook

    context = RunContext(runbook.id)
    journal = None
    try:
        journal = Journal()
        context.journal = journal
        context.incident_id = journal.start_incident(env.name, [runbook.id], title=f"{runbook.title} (headless run)")
        journal.record(context.incident_id, "run", runbook_id=runbook.id, status="started",
                       summary=f"headless run of {runbook.id} on {env.name}{' (read-only)' if args.read_only else ''}")
    except Exception as exc:  # noqa: BLE001 - an unwritable journal must not stop the diagnosis
        print(f"warroom: journal unavailable ({exc}); running without it", file=sys.stderr)
        context.journal = None
    width = max((len(s.id) for s in runbook.steps), default=4)
    if not args.json:
        print(f"{runbook.id}: {runbook.title} on {env.name}")

    def show(outcome: Any) -> None:
        if not args.json:
            print(redact(_line(outcome, width)), flush=True)

    report = await run_runbook(runbook, env, read_only=args.read_only, context=context, on_outcome=show,
                               timeout=getattr(args, "timeout", None))
    if journal is not None and context.incident_id is not None:
        status = "passed" if report.ok else "failed"
        journal.record(context.incident_id, "run", runbook_id=runbook.id, status=status, summary="; ".join(report.notes) or status)
        journal.close_incident(context.incident_id, status)
        journal.close()
    if args.json:
        _print_json({**report.to_json(), "incident": context.incident_id})
    else:
        for note in report.notes:
            print(f"note: {note}")
        print("all automatic steps passed" if report.ok else "some automatic steps did not pass")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _close(journal: Any, incident_id: int | None, resolution: str) -> int:
    """`warroom journal close [ID] --resolution TEXT`: the last open incident by default."""
    text = " ".join(resolution.split())
    if not text:
        raise UsageError("--resolution: say in one line what fixed it (or why it needed no fix)")
    if incident_id is None:
        found = next((inc for inc in journal.incidents(1000) if inc.open), None)
        if found is None:
            raise UsageError(f"no open incident in {journal.path} (warroom journal list shows them all)")
    else:
        found = journal.incident(incident_id)
        if found is None:
            raise UsageError(f"incident {incident_id}: no such incident in {journal.path}")
        if not found.open:
            raise UsageError(f"incident {incident_id} is already closed ({found.status}"
                             f"{': ' + found.resolution if found.resolution else ''})")
    journal.close_incident(found.id, "resolved", text)
    print(redact(f"closed incident {found.id} ({found.title or 'untitled'}): {text}"))
    return EXIT_OK


def journal_main(args: Any) -> int:
    from runbooks.journal import Journal

    with Journal() as journal:
        if args.journal_command == "list":
            incidents = journal.incidents()
            if not incidents:
                print(f"no incidents recorded in {journal.path}")
            for inc in incidents:
                print(f"{inc.id:>4}  {inc.to_json()['started_at']}  {inc.status:<8} {inc.env:<12} {', '.join(inc.runbooks) or '-'}  {inc.title}")
            return EXIT_OK
        if args.journal_command == "close":
            return _close(journal, args.incident, args.resolution)
        incident_id = args.incident
        if incident_id is None:
            last = journal.last_incident()
            if last is None:
                raise UsageError(f"no incidents recorded yet in {journal.path}")
            incident_id = last.id
        if journal.incident(incident_id) is None:
            raise UsageError(f"--incident {incident_id}: no such incident in {journal.path}")
        if args.format == "json":
            text = redact(json.dumps(journal.export_json(incident_id), indent=2, default=str)) + "\n"
        else:
            text = redact(journal.export_markdown(incident_id))
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write: {exc.strerror}") from None
        print(f"wrote incident {incident_id} to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK
