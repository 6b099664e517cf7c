"""Cockpit test helpers: frozen time zone, app builders fed from fixed readings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

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
