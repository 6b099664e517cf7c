"""Command palette entries: jump to a pane, open a runbook, show the keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import WarroomApp


class WarroomCommands(Provider):
    """"Jump to pane …" and "Open runbook …" for keyboard-only operators."""

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        from tui.screens.main import PANE_TITLES

        app: WarroomApp = self.app  # type: ignore[assignment]
        for number, (name, title) in enumerate(PANE_TITLES, start=1):
            yield f"Jump to pane: {title}", partial(app.jump_to_pane, name), f"key {number}"
            yield f"Details: {title}", partial(app.open_detail, name), "drill down (Enter on the pane)"
        for entry in app.runbooks:
            yield f"Open runbook: {entry.title}", partial(app.open_runbook, entry.id), entry.id
            yield f"Open runbook guided: {entry.title}", partial(app.open_runbook, entry.id, guided=True), entry.id

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
