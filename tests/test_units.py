"""The one unit system: durations, binary sizes and counts as the operator reads them everywhere."""

from __future__ import annotations

import math

import pytest

from probes import units
from runbooks.conditions import EvalError, compile_condition, render_text
from widgets.pane import bars, scale_top
from widgets.store import format_age, format_bytes


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0003, "0.3 ms"), (0.0042, "4.2 ms"), (0.012, "12 ms"), (0.83, "830 ms"), (0.9996, "1.0 s"),
    (1.4, "1.4 s"), (9.96, "10 s"), (63.995, "64 s"), (119.4, "119 s"), (119.6, "2m00s"), (125, "2m05s"),
    (3599.4, "59m59s"), (3725, "1h02m"), (99 * 3600, "99h00m"), (100 * 3600 + 5, "4d04h"), (-3, "0.0 ms"),
])
def test_durations(seconds: float, text: str) -> None:
    assert units.duration(seconds) == text
    assert format_age(seconds) == text  # the panes' ages are the same words


def test_unknown_values_say_so() -> None:
    assert units.duration(None) == "unknown" and units.duration(math.nan) == "unknown"
    assert units.duration_ms(None, unknown="-") == "-" and units.size(None) == "?" and units.count(None) == "?"


def test_milliseconds_read_like_seconds_above_one_second() -> None:
    assert units.duration_ms(63995) == "64 s"  # never `63995 ms`
    assert [units.duration_ms(v) for v in (0.3, 35, 999.4, 1513)] == ["0.3 ms", "35 ms", "999 ms", "1.5 s"]


@pytest.mark.parametrize(("count", "text"), [
    (0, "0 B"), (512, "512 B"), (1023.6, "1.0 KiB"), (1536, "1.5 KiB"), (22_000_000, "21.0 MiB"),
    (64 * 1024 * 1024, "64.0 MiB"), (1.5 * 1024**3, "1.5 GiB"), (-2048, "-2.0 KiB"),
])
def test_sizes_are_binary_with_iec_names(count: float, text: str) -> None:
    assert units.size(count) == text == format_bytes(count)


def test_counts() -> None:
    assert [units.count(n) for n in (0, 999, 9999, 12_345, 123_456, 999_960, 1_234_567, 5e9)] == [
        "0", "999", "9999", "12.3k", "123k", "1.0M", "1.2M", "5.0G"]


def test_report_templates_use_the_same_units() -> None:
    names = {"data": {"idle_s": 128.4, "bytes": 60_000_000, "ms": 1513, "gone": None}}
    text = render_text("idle {{ duration(data.idle_s) }}, {{ size(data.bytes) }}, {{ duration_ms(data.ms) }}", names)
    assert text == "idle 2m08s, 57.2 MiB, 1.5 s"
    assert render_text("{{ duration(data.gone) }}", names) == "unknown"
    for bad in ("duration('soon')", "size(True)", "duration(int('1' + '0' * 400))"):
        assert render_text(f"x {{{{ {bad} }}}}", names) == ""  # a report that cannot be filled is left out
        with pytest.raises(EvalError):
            compile_condition(f"{bad} == 'x'").test(names)


def test_sparklines_scale_from_zero_to_a_floor() -> None:
    noise = [30, 40, 35, 38, 31]
    assert bars(noise, 5) == "▆█▇█▇"  # without a scale: from 0 to the highest reading
    # Scaled 0..500 ms (a warn line of 300 ms, rounded up), loopback jitter stays flat.
    top = scale_top(noise, 300.0)
    assert top == 500.0 and bars(noise, 5, top) == "▁▁▁▁▁"
    assert bars([0, 0, 0], 3, top) == "▁▁▁"
    spike = [30, 30, 1400, 30]
    assert scale_top(spike, 300.0) == 2000.0 and bars(spike, 4, 2000.0) == "▁▁▆▁"
    assert bars([3000], 1, 2000.0) == "█"  # above the scale: the top bar, never an error
    assert scale_top([], 1024 * 1024.0, 1024 * 1024.0) == 1024 * 1024.0  # a floor in MiB stays 1 MiB
    assert [units.nice_ceiling(v) for v in (0.3, 1, 40, 51, 999, 1400)] == [0.5, 1.0, 50.0, 100.0, 1000.0, 2000.0]
