"""App-wide messages: small dataclasses posted by probe sources and screens to the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from probes.result import ProbeResult


@dataclass
class ProbesUpdated(Message):
    """New readings from a probe source.

    `origin` names the (kind, target) that produced them. When the app is busy and a newer
    batch of the same origin is queued behind an older one, the older one is dropped: the
    screen only ever needs the newest state, and a backlog must never build up.
    """

    results: tuple[ProbeResult, ...]
    origin: str | None = None

    def can_replace(self, message: Message) -> bool:
        return (
            self.origin is not None
            and isinstance(message, ProbesUpdated)
            and message.origin == self.origin
        )


@dataclass
class JumpToPane(Message):
    """Focus one of the main screen's panes (from the command palette or a key)."""

    pane_id: str
