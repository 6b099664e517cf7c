"""The `warroom` command line: the cockpit, `check`, `demo`, `sandbox`, `runbook` and `journal`.

Every sub-command's implementation is imported lazily so that `warroom check` never loads
Textual and the cockpit's first frame never waits for psycopg, redis or docker.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the operator (CLI, config, runbook): one message, exit status 2."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _add_target_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # Sub-commands accept the options too; SUPPRESS keeps `warroom --config X check` working.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", type=Path, default=default, help="TOML config (default ./warroom.toml, then the user config dir)")
    parser.add_argument("--env", default=default, help="environment in the config (default: the first)")


def _add_cockpit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh", type=_positive, metavar="SECONDS", help="seconds between probe rounds")
    parser.add_argument("--read-only", action="store_true", help="never offer or run remediation actions")
    parser.add_argument("--runbook", metavar="ID", help="open this runbook at start")
    parser.add_argument("--guided", action="store_true", help="with --runbook: walk it one step at a time")
    parser.add_argument("--resume", action="store_true", help="reopen the last incident with its checklist state")


# The cockpit's own options that take a value: what follows them is not a command.
_VALUE_OPTIONS = {"--config", "--env", "--refresh", "--runbook"}


def cockpit_only(argv: Sequence[str]) -> bool:
    """Whether `argv` opens the cockpit with options only (no command, no help)."""
    previous = ""
    for arg in argv:
        if arg in ("-h", "--help") or (not arg.startswith("-") and previous not in _VALUE_OPTIONS):
            return False
        previous = arg
    return True


def build_parser(commands: bool = True) -> argparse.ArgumentParser:
    """The whole command line; without `commands`, only the cockpit's options: building the
    sub-commands' parsers takes ~10 ms, paid before the cockpit's first frame otherwise."""
    parser = argparse.ArgumentParser(
        prog="warroom",
        description="An incident cockpit for the terminal. With no command, opens the cockpit.",
    )
    _add_target_options(parser, top=True)
    _add_cockpit_options(parser)
    parser.set_defaults(handler="tui.cockpit:main")
    if not commands:
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="run every probe once and print the results")
    _add_target_options(check)
    check.add_argument("--json", action="store_true", help="print a JSON array, one object per result")
    check.add_argument("--timeout", type=_positive, metavar="S", help="per-target timeout in seconds")
    check.set_defaults(handler="tui.check:main")

    demo = sub.add_parser("demo", help="start the local sandbox and open the cockpit on it")
    demo.add_argument("--dir", type=Path, help="sandbox folder (default: a temporary one)")
    demo.add_argument("--scenario", action="append", default=[], metavar="NAME", help="inject this fault at start (repeatable)")
    _add_cockpit_options(demo)
    demo.set_defaults(handler="tui.demo:main")

    sandbox = sub.add_parser("sandbox", help="a real local environment for drills, the demo and the tests")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    up = sandbox_sub.add_parser("up", help="start the sandbox and run until interrupted")
    up.add_argument("--dir", type=Path, required=True, help="folder for its data, logs and warroom.toml")
    up.add_argument("--scenario", action="append", default=[], metavar="NAME", help="inject this fault once ready (repeatable)")
    up.add_argument("--no-docker", action="store_true", help="do not start containers even if an engine is reachable")
    up.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus and Alertmanager even if installed")
    # For `warroom demo`: stop when its pipe on our stdin closes; the folder is its temporary one.
    up.add_argument("--stop-on-eof", action="store_true", help=argparse.SUPPRESS)
    up.add_argument("--temporary", action="store_true", help=argparse.SUPPRESS)
    up.set_defaults(handler="tui.sandbox.runner:main")
    for action in ("inject", "heal"):
        cmd = sandbox_sub.add_parser(action, help=f"{action} a fault scenario in a running sandbox")
        cmd.add_argument("scenario", metavar="NAME")
        cmd.add_argument("--dir", type=Path, required=True)
        cmd.set_defaults(handler="tui.sandbox.control:main")
    status = sandbox_sub.add_parser("status", help="show a running sandbox's components and active scenarios")
    status.add_argument("--dir", type=Path, required=True)
    status.set_defaults(handler="tui.sandbox.control:main")
    scenarios = sandbox_sub.add_parser("scenarios", help="list the fault scenarios")
    scenarios.set_defaults(handler="tui.sandbox.control:main")

    runbook = sub.add_parser("runbook", help="list, show or run runbooks headless")
    runbook_sub = runbook.add_subparsers(dest="runbook_command", metavar="ACTION", required=True)
    rb_list = runbook_sub.add_parser("list", help="list the runbooks")
    rb_list.add_argument("--json", action="store_true")
    _add_target_options(rb_list)
    rb_show = runbook_sub.add_parser("show", help="show a runbook's steps and their kinds")
    rb_show.add_argument("runbook", metavar="ID|FILE")
    rb_show.add_argument("--json", action="store_true")
    _add_target_options(rb_show)
    rb_run = runbook_sub.add_parser("run", help="run a runbook's automatic steps; actions are refused")
    rb_run.add_argument("runbook", metavar="ID|FILE")
    rb_run.add_argument("--json", action="store_true")
    rb_run.add_argument("--read-only", action="store_true")
    rb_run.add_argument("--timeout", type=_positive, metavar="S")
    _add_target_options(rb_run)
    for cmd in (rb_list, rb_show, rb_run):
        cmd.set_defaults(handler="tui.runbook_cli:main")

    journal = sub.add_parser("journal", help="the incident journal")
    journal_sub = journal.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    export = journal_sub.add_parser("export", help="write an incident's timeline for the postmortem")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.add_argument("--incident", type=int, metavar="N", help="incident number (default: the last)")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    journal_list = journal_sub.add_parser("list", help="list recorded incidents")
    close = journal_sub.add_parser("close", help="close an incident with a one-line resolution")
    close.add_argument("incident", type=int, nargs="?", metavar="ID", help="incident number (default: the last open one)")
    close.add_argument("--resolution", "-r", required=True, metavar="TEXT", help="what fixed it, in one line")
    for cmd in (export, journal_list, close):
        cmd.set_defaults(handler="tui.runbook_cli:journal_main")
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int]:
    import importlib

    module_name, _, func = handler.partition(":")
    return getattr(importlib.import_module(module_name), func)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(commands=not cockpit_only(argv)).parse_args(argv)
    from probes.config import ConfigError

    try:
        code = _resolve(args.handler)(args)
    except (ConfigError, UsageError) as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return int(code or 0)
