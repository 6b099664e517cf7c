"""Panes for many targets: counts, problems first, one line per group, `/` in panes and drill-down."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from probes.config import HttpTarget
from probes.result import ProbeResult
from tests.tui import fixtures
from tests.tui.conftest import main_screen_settled
from tests.tui.test_cockpit import screen_text
from tui.app import WarroomApp, make_app
from tui.scheduler import FixedSource
from widgets.fleet import Row, arrange, matches, worst_series
from widgets.pane import Pane

GROUPS = ("payments", "search", "auth")


def fleet(count: int = 60) -> tuple[HttpTarget, ...]:
    """`count` endpoints in three groups, the config's order interleaving them."""
    return tuple(HttpTarget(f"web-{i:03d}", f"http://127.0.0.1:{20000 + i}/health", group=GROUPS[i % 3]) for i in range(count))


def http(target: str, status: str = "ok", latency: float = 12.0, ts: float = fixtures.NOW) -> ProbeResult:
    code = 200 if status == "ok" else 503
    return fixtures.r(target, "http", "http", status, f"{target}: HTTP {code} in {latency:.0f} ms", latency, ts,
                      status_code=code, latency_ms=latency, latency_warn_ms=500.0, url=f"http://127.0.0.1/{target}")


def readings(targets: tuple[HttpTarget, ...], failing: dict[str, float] | None = None) -> list[ProbeResult]:
    """Ten rounds of every target, latency growing with the index; `failing` targets answer
    503 in the given time at the last round."""
    failing = failing or {}
    found = []
    for back in range(9, -1, -1):
        for i, t in enumerate(targets):
            bad = back == 0 and t.name in failing
            found.append(http(t.name, "fail" if bad else "ok", failing[t.name] if bad else 10.0 + i, fixtures.NOW - back))
    return found


def app_with(targets: tuple[HttpTarget, ...], results: list[ProbeResult]) -> WarroomApp:
    env = fixtures.environment(http=targets, postgres=(), redis=(), docker=None)
    return make_app(env, source=FixedSource(results), clock=fixtures.clock)


def pane(app: WarroomApp, name: str) -> Pane:
    return app.screen.query_one(f"#{name}", Pane)


def row(name: str, state: str = "ok", group: str = "", values: tuple[float, ...] = ()) -> Row:
    return Row(name, Text(name), state, name, group, values, max(values, default=None), (name,))


# --- arranging rows ---------------------------------------------------------------------------


def test_rows_that_fit_are_listed_one_by_one_problems_first_in_config_order_within_a_state() -> None:
    rows = [row("a"), row("b", "warn"), row("c"), row("d", "fail"), row("e", "error"), row("f", "warn")]
    lines, grouped = arrange(rows, 10, lambda key: ())
    assert not grouped
    assert [r.name for r in lines] == ["d", "e", "b", "f", "a", "c"]


def test_more_rows_than_lines_give_problems_then_one_line_per_group_with_counts_and_worst_history() -> None:
    history = {("a1",): [1.0, 5.0, 2.0], ("a2",): [4.0, 1.0], ("b1",): [3.0], ("b2",): [7.0, 1.0, 1.0]}
    rows = [row("a1", group="pay", values=(1.0, 5.0, 2.0)), row("b1", group="search", values=(3.0,)),
            row("a2", "fail", group="pay", values=(4.0, 1.0)), row("b2", group="search", values=(7.0, 1.0, 1.0))]
    lines, grouped = arrange(rows, 3, lambda key: history[key])
    assert grouped
    assert [r.key for r in lines] == ["a2", "group-pay", "group-search"]
    pay, search = lines[1], lines[2]
    assert pay.line().plain.startswith("✖ pay group  1/2 ok") and pay.state == "fail"
    assert search.line().plain.startswith("● search group  2/2 ok")
    assert "worst p95 7.0 ms" in search.line().plain
    # Point by point the slowest member, aligned on the newest reading.
    assert list(pay.history()) == [1.0, 5.0, 2.0]
    assert list(search.history()) == [7.0, 1.0, 3.0]


def test_targets_without_group_fill_the_room_then_one_line_sums_up_the_rest() -> None:
    rows = [row(f"t{i}") for i in range(20)] + [row("bad", "fail")]
    lines, grouped = arrange(rows, 5, lambda key: [1.0])
    assert grouped
    # The problem first, as many healthy targets as fit, then one line for the rest (never
    # counting the problem again).
    assert [r.name for r in lines] == ["bad", "t0", "t1", "t2", "other"]
    assert lines[-1].line().plain.startswith("● 17 more  17/17 ok") and lines[-1].state == "ok"


def test_worst_series_pads_shorter_histories_on_the_left() -> None:
    assert worst_series([[1.0, 2.0, 3.0], [5.0], [4.0, 0.0]]) == [1.0, 4.0, 5.0]
    assert worst_series([[2.0, 1.0]]) == [2.0, 1.0]
    assert worst_series([]) == []


def test_only_the_rows_drawn_have_their_text_made() -> None:
    made: list[str] = []

    def text(name: str) -> Text:
        made.append(name)
        return Text(name)

    rows = [Row(f"t{i}", (lambda i=i: text(f"t{i}")), "ok", f"t{i}", "g") for i in range(300)]
    rows[42].state = "fail"
    lines, _ = arrange(rows, 10, lambda key: ())
    for line in lines:
        line.line()
    assert made == ["t42"]  # the group line is made from the members' states, not their text


def test_filter_words_all_match_name_group_state_or_other_words() -> None:
    target = Row("k", Text("x"), "warn", "web-007", "payments", words="http 127.0.0.1")
    assert matches(target, "pay warn") and matches(target, "WEB-00") and matches(target, "127.0.0.1")
    assert not matches(target, "pay fail")


# --- in the cockpit ---------------------------------------------------------------------------


async def test_a_fleet_reads_as_counts_problems_and_groups_in_services_and_latency() -> None:
    targets = fleet(60)
    app = app_with(targets, readings(targets, failing={"web-031": 900.0}))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.pause(0.2)
        text = screen_text(app)
        services, latency = pane(app, "services"), pane(app, "latency")
        assert "59/60 ok" in str(services.border_subtitle)
        assert str(latency.border_subtitle).startswith("59/60 ok · worst: web-031")
        for shown in (services, latency):
            lines = shown.query_one("SeriesRows")._lines  # type: ignore[attr-defined]
            plain = [line[0].plain for line in lines]
            assert plain[0].startswith("✖ web-031")  # the problem first, on a line of its own
            # web-031 is in `search` (every third target): its group says so, the others are ok.
            assert any(p.startswith("✖ search group  19/20 ok") for p in plain)
            assert any(p.startswith("● payments group  20/20 ok") for p in plain)
            assert any(p.startswith("● auth group  20/20 ok") for p in plain)
            assert len(plain) == 4
        assert "auth group" in text and "web-030" not in text


async def test_slash_filters_a_fleet_pane_once_the_operator_moved_to_it_and_escape_clears() -> None:
    targets = fleet(60)
    app = app_with(targets, readings(targets))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.pause(0.2)
        await pilot.press("6")  # the Latency pane
        latency = pane(app, "latency")
        assert app.screen.focused is latency
        await pilot.press("slash", *"web-04", "enter")
        await pilot.pause(0.1)
        assert latency.filter_text == "web-04"
        assert "/web-04" in str(latency.border_title)
        plain = [line[0].plain for line in latency.query_one("SeriesRows")._lines]  # type: ignore[attr-defined]
        assert len(plain) == 10 and all("web-04" in p for p in plain)  # ten fit: listed one by one
        assert "10 of 60 shown" in str(latency.border_subtitle)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert latency.filter_text == "" and "/web" not in str(latency.border_title)


async def test_slash_at_start_still_finds_a_runbook_in_a_fleet() -> None:
    targets = fleet(60)
    app = app_with(targets, readings(targets))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.press("slash")
        await pilot.pause(0.1)
        assert pane(app, "services").filter_text == ""
        focused = app.screen.focused
        assert focused is not None and app.screen.query_one("#sidebar") in focused.ancestors_with_self


async def test_drill_down_lists_every_endpoint_filters_and_sorts_by_status_and_latency() -> None:
    targets = fleet(30)
    app = app_with(targets, readings(targets, failing={"web-005": 40.0, "web-020": 2.0}))
    async with app.run_test(size=(120, 40)) as pilot:
        await main_screen_settled(pilot)
        await pilot.press("1", "enter")
        await pilot.pause(0.2)
        table = app.screen.query_one("#endpoints", DataTable)

        def names() -> list[str]:
            return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]

        assert names() == [t.name for t in targets]  # every target, the config's order
        assert "28/30 ok" in str(app.screen.query_one("#endpoints-title").content)
        await pilot.press("s")  # by status: problems first
        await pilot.pause(0.1)
        assert names()[:2] == ["web-005", "web-020"] and len(names()) == 30
        await pilot.press("s")  # by latency: slowest first
        await pilot.pause(0.1)
        assert names()[:3] == ["web-005", "web-029", "web-028"]
        assert "by latency" in str(app.screen.query_one("#endpoints-title").content)
        await pilot.press("slash", *"auth", "enter")
        await pilot.pause(0.1)
        assert names() and all(t.group == "auth" for t in targets if t.name in names())
        assert len(names()) == 10
        assert "/auth: 10 shown" in str(app.screen.query_one("#endpoints-title").content)
