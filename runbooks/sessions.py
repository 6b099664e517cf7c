"""The connections runbook reads go through: one per target, shared by every step of a walk.

`RunContext.sessions` is a callable `(kind, target) -> Session | None`. The cockpit hands in its
probe scheduler's (`tui.scheduler.LiveSource.session`), so steps reuse the probes' connection;
a headless walk uses a `WalkSessions` of its own, closed when the walk ends. Either way, reading
a server that is out of connection slots never takes one more.
"""

from __future__ import annotations

import asyncio
from typing import Any

SHARED_KINDS = ("postgres",)  # backends whose reads take a server slot per connection
CLOSE_S = 1.0


def shared_session(context: Any, kind: str, target: Any) -> Any:
    """The session a step on `target` reads through, or None (it then connects on its own)."""
    provider = getattr(context, "sessions", None)
    if provider is None or kind not in SHARED_KINDS:
        return None
    session = provider(kind, target)
    # A session of another target of the same name (another environment) is not this one's.
    return session if session is not None and getattr(session, "target", None) == target else None


class WalkSessions:
    """One probe Session per target for a headless walk, opened on first use; `aclose` ends them."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], Any] = {}

    def __call__(self, kind: str, target: Any) -> Any:
        key = (kind, target.name)
        if key not in self._sessions:
            from probes.registry import backend

            module = backend(kind)
            self._sessions[key] = module.Session(target) if hasattr(module, "Session") else None
        return self._sessions[key]

    async def aclose(self) -> None:
        sessions, self._sessions = [s for s in self._sessions.values() if s is not None], {}
        for session in sessions:
            try:
                await asyncio.wait_for(session.aclose(), CLOSE_S)
            except Exception:  # noqa: BLE001,S110 - closing at the end of a walk is best effort
                pass
