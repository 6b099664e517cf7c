"""Snapshots of the main screen, every drill-down and the help screen at 120x40 and 80x24."""

from __future__ import annotations

import pytest

from tests.tui.conftest import incident_app, main_screen_settled

SIZES = [(120, 40), (80, 24)]
# pane number key -> drill-down
DRILL_DOWNS = {"services": "1", "connections": "2", "locks": "3", "replication": "4", "queues": "5", "latency": "6"}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(incident_app(), terminal_size=size, run_before=main_screen_settled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pane", list(DRILL_DOWNS))
def test_drill_down(snap_compare, pane: str, size: tuple[int, int]) -> None:
    assert snap_compare(incident_app(), terminal_size=size, run_before=main_screen_settled, press=[DRILL_DOWNS[pane], "enter", "_"])


def test_help_screen(snap_compare) -> None:
    assert snap_compare(incident_app(), terminal_size=(120, 40), run_before=main_screen_settled, press=["question_mark", "_"])
