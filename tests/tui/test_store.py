"""The readings store behind the panes: bounded history, display order, stale readings."""

from __future__ import annotations

import pytest

from probes.result import ProbeResult, Status, error_result
from widgets.store import ResultStore


def reading(target: str, value: float, ts: float, probe: str = "replication") -> ProbeResult:
    return ProbeResult(target, "postgres", probe, Status.OK, f"{target} {value}", value=value, timestamp=ts)


def test_history_is_bounded_however_long_the_cockpit_runs() -> None:
    store = ResultStore(history=50, clock=lambda: 10_000.0)
    for i in range(5_000):
        store.add([reading("primary", float(i), float(i))])
    values = store.values(("postgres", "primary", "replication"))
    assert len(values) == 50 and values[0] == 4_950.0 and values[-1] == 4_999.0


def test_readings_follow_the_configured_order_not_arrival() -> None:
    store = ResultStore(order=["primary", "replica"])
    store.add([reading("replica", 1.0, 1.0), reading("unlisted", 3.0, 1.0), reading("primary", 2.0, 1.0)])
    assert [r.result.target for r in store.readings("replication")] == ["primary", "replica", "unlisted"]


def test_an_error_after_good_readings_is_shown_stale_with_the_last_good_value() -> None:
    now = [100.0]
    store = ResultStore(clock=lambda: now[0])
    store.add([reading("primary", 5.0, 100.0)])
    now[0] = 112.0
    store.add([error_result("primary", "postgres", "replication", "primary: timed out after 2s", timeout=True)])
    (found,) = store.readings("replication")
    assert found.stale and found.state == "stale"
    assert found.result.value == 5.0  # the last good reading, not the error
    assert found.staleness == "timeout 12 s"
    # A refusal says so: "stale" beside the last values ("200 11 ms") read as a healthy service.
    store.add([error_result("primary", "postgres", "replication",
                            "primary: connection refused at 127.0.0.1:5432 (is PostgreSQL running?)")])
    (found,) = store.readings("replication")
    assert found.stale and found.staleness == "refused 12 s"
    store.add([error_result("primary", "postgres", "replication", "primary: KeyError: 'x'")])
    assert store.readings("replication")[0].staleness == "error 12 s"
    # The error is not history: the series holds only real readings.
    assert store.values(("postgres", "primary", "replication")) == [5.0]


def test_rate_is_the_change_per_second_over_the_recent_window_only() -> None:
    store = ResultStore(history=300)
    key = ("postgres", "primary", "replication")
    assert store.rate(key) is None  # no history
    # Flat for 100 s, then growing 3 per second for the last 20 s.
    for t in range(100):
        store.add([reading("primary", 50.0, float(t))])
    for t in range(100, 121):
        store.add([reading("primary", 50.0 + 3 * (t - 100), float(t))])
    assert store.rate(key, window_s=20) == 3.0
    assert store.rate(key, window_s=40) == 60 / 40  # half the window was flat
    assert store.rate(key, window_s=1000) == 60 / 120  # the whole history
    assert store.values(key, last=3) == [104.0, 107.0, 110.0]


def test_percentiles_match_the_statistics_module() -> None:
    """p50/p95 come from one sorted window, computed as statistics.quantiles' inclusive method."""
    import random
    import statistics

    rng = random.Random(7)
    for size in (2, 3, 10, 300):
        store = ResultStore(history=300)
        values = [rng.uniform(1, 500) for _ in range(size)]
        for t, value in enumerate(values):
            store.add([reading("primary", value, float(t))])
        expected = statistics.quantiles(values, n=100, method="inclusive")
        for pct in (1, 50, 95, 99):
            assert store.percentile(("postgres", "primary", "replication"), pct) == pytest.approx(expected[pct - 1])


def test_percentiles_stay_exact_as_the_window_slides() -> None:
    # The sorted window is kept up to date reading by reading (insert one, drop the evicted one):
    # it must always give what sorting the window afresh gives.
    import random
    import statistics

    store = ResultStore(history=40, clock=lambda: 0.0)
    key = ("postgres", "primary", "replication")
    rng = random.Random(7)
    for i in range(300):
        store.add([reading("primary", float(rng.choice([1, 2, 2, 3, 50, rng.random() * 100])), float(i))])
        if i % 7 == 0 or i > 290:
            window = store.values(key)
            for pct in (50, 95):
                expected = statistics.quantiles(window, n=100, method="inclusive")[pct - 1] if len(window) > 1 else window[0]
                assert store.percentile(key, pct) == pytest.approx(expected), (i, pct)


def test_a_target_that_appears_later_takes_its_configured_place() -> None:
    store = ResultStore(order=["a", "b", "c"])
    store.add([reading("c", 1.0, 1.0), reading("zz", 1.0, 1.0)])
    assert [r.result.target for r in store.readings("replication")] == ["c", "zz"]
    store.add([reading("a", 1.0, 2.0)])
    store.add([reading("c", 2.0, 3.0)])  # a known target again: its place stays
    assert [r.result.target for r in store.readings("replication")] == ["a", "c", "zz"]
    assert [r.target for r in store.results("replication")] == ["a", "c", "zz"]


def test_a_tail_is_kept_until_its_series_changes_even_at_the_same_timestamp() -> None:
    store = ResultStore(history=5, clock=lambda: 0.0)
    key = ("postgres", "primary", "replication")
    for i in range(5):
        store.add([reading("primary", float(i), float(i))])
    first = store.tail(key, 3)
    assert first == (2.0, 3.0, 4.0) and store.tail(key, 3) is first  # unchanged: the same tuple
    store.add([reading("primary", 9.0, 4.0)])  # a new point, same timestamp, window full
    assert store.tail(key, 3) == (3.0, 4.0, 9.0)
    assert store.tail(key, 10) == (1.0, 2.0, 3.0, 4.0, 9.0)
    assert store.tail(("postgres", "nobody", "replication"), 3) == ()
