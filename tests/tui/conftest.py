"""Cockpit test helpers: frozen time zone, app builders fed from fixed readings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.tui import fixtures
from tui.app import WarroomApp, make_app


@pytest.fixture(autouse=True)
def _utc() -> Iterator[None]:
    """The header shows local time: pin it so snapshots match on every machine."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def incident_app(**kwargs: object) -> WarroomApp:
    """The cockpit on the fixed incident readings, with "now" frozen."""
    return make_app(fixtures.environment(), source=fixtures.incident_source(), clock=fixtures.clock, **kwargs)  # type: ignore[arg-type]


async def main_screen_settled(pilot: Any, within_s: float = 10.0) -> None:
    """Until the main screen is complete: panes in place of the first frame's stand-ins, the
    sidebar and the footer mounted (they follow the first readings). Snapshots wait for this
    rather than for a fixed time, which a loaded machine may overrun."""
    from textual.widgets import Footer

    from tui.screens.main import MainScreen

    app = pilot.app
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        main = next((s for s in app.screen_stack if isinstance(s, MainScreen)), None)
        if main is not None and main.panes() and main.query("#sidebar") and main.query(Footer) \
                and not getattr(main.query_one("#sidebar"), "busy", False):  # its suggestions in
            break
        await pilot.pause(0.05)
    await pilot.pause()
