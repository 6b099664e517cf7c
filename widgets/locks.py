"""The Locks pane: blocking chains as a tree, root blocker first, blocked sessions under it."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from widgets.pane import Pane, headline
from widgets.store import Reading, format_age, worst_state


def one_line(query: str | None, limit: int = 60) -> str:
    text = " ".join((query or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def owner(session: dict[str, Any]) -> str:
    """`billing app@10.0.0.7`: the application, user and client address of a session."""
    who = str(session.get("usename") or "")
    where = str(session.get("client_addr") or "")
    user = f"{who}@{where}" if who and where else who or where
    return " ".join(part for part in (str(session.get("application_name") or ""), user) if part)


def blocker_label(chain: dict[str, Any]) -> Text:
    label = Text(f"pid {chain.get('blocker_pid')}", style="bold red")
    label.append(f" {chain.get('state') or '?'}")
    if chain.get("xact_age_s") is not None:
        label.append(f" {format_age(chain['xact_age_s'])}")
    if who := owner(chain):  # the culprit's owner before its query: a narrow pane cuts the end
        label.append(f"  {who}", style="bold")
    label.append(f"  {one_line(chain.get('query'))}", style="dim")
    return label


def blocked_label(session: dict[str, Any]) -> Text:
    label = Text(f"pid {session.get('pid')}", style="bold")
    if session.get("wait_s") is not None:
        label.append(f" waits {format_age(session['wait_s'])}")
    if session.get("application_name"):
        label.append(f"  {session['application_name']}")
    label.append(f"  {one_line(session.get('query'))}", style="dim")
    return label


def instance_label(reading: Reading) -> Text:
    data = reading.result.data
    label = headline(reading)
    if reading.result.status.value == "error" and not reading.stale:
        return label.append(f"  {reading.result.summary}")
    blocked = int(reading.result.value or 0)
    if blocked:
        label.append(f"  {blocked} blocked, longest {format_age(data.get('max_blocked_s'))}")
    else:
        label.append("  no blocking", style="dim")
    return label


class LocksPane(Pane):
    """Who blocks whom, per PostgreSQL instance."""

    TITLE = "Locks"
    PROBES = ("locks",)
    KINDS = ("postgres",)
    EMPTY = "no PostgreSQL configured"
    DETAIL = "locks"

    DEFAULT_CSS = """
    LocksPane Tree { height: auto; padding: 0; background: transparent; overflow: hidden; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signature: object = None

    def show(self) -> None:
        readings = self.store.readings("locks")
        signature = tuple(
            (instance_label(r), tuple(self._chain_signature(c) for c in r.result.data.get("chains") or ()))
            for r in readings
        )
        if signature != self._signature:
            self._signature = signature
            self._rebuild(readings)
        self.set_empty(None if readings else self.empty_text(bool(readings)))
        blocked = sum(int(r.result.value or 0) for r in readings)
        summary = f"{blocked} blocked" if blocked else ("no blocking" if readings else "")
        self.set_summary(worst_state(r.state for r in readings), summary, readings)

    @staticmethod
    def _chain_signature(chain: dict[str, Any]) -> tuple[object, ...]:
        # Ages tick every refresh; compare them in whole seconds so the tree is not rebuilt
        # for sub-second noise.
        sessions = tuple(
            (s.get("pid"), int(s.get("wait_s") or 0), s.get("query")) for s in chain.get("blocked_sessions") or ()
        )
        return (chain.get("blocker_pid"), chain.get("state"), int(chain.get("xact_age_s") or 0), owner(chain), chain.get("query"), sessions)

    def _rebuild(self, readings: list[Reading]) -> None:
        if not readings:
            return
        # Imported and mounted with the first reading, not composed: the first frame need not
        # wait for the Tree widget's module and stylesheet.
        from textual.widgets import Tree

        tree = next((child for child in self.children if isinstance(child, Tree)), None)
        if tree is None:
            tree = Tree("locks")
            tree.show_root = False
            tree.guide_depth = 2
            tree.can_focus = False  # the pane holds focus; Enter opens the full queries
            self.mount(tree)
        tree.clear()
        for reading in readings:
            node = tree.root.add(instance_label(reading), expand=True)
            for chain in reading.result.data.get("chains") or ():
                root = node.add(blocker_label(chain), data=chain.get("blocker_pid"), expand=True)
                for session in chain.get("blocked_sessions") or ():
                    root.add_leaf(blocked_label(session), data=session.get("pid"))
