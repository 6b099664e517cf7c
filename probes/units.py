"""Human units for every value an operator reads: durations, byte sizes (binary, IEC) and counts.

One unit system everywhere (panes, probe summaries, runbook outcomes, the journal):
- durations: `0.3 ms`, `830 ms`, `1.4 s`, `64 s`, `2m05s`, `1h02m`, `3d04h`;
- sizes: binary multiples with IEC names (`512 B`, `33.6 MiB`, `1.5 GiB`), because Redis's
  `maxmemory 64mb`, PostgreSQL's `16MB` and the kernel all count in powers of 1024: the
  operator's 64 MiB limit must read "64.0 MiB", not "67.1 MB";
- counts: `999`, `12.3k`, `1.2M`.
No Textual or Rich here: probes use it too.
"""

from __future__ import annotations

import math

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def duration(seconds: float | None, *, unknown: str = "unknown") -> str:
    """A duration as an operator reads it: `830 ms`, `1.4 s`, `64 s`, `2m05s`, `1h02m`."""
    if seconds is None or not math.isfinite(seconds):
        return unknown
    seconds = max(0.0, float(seconds))
    ms = seconds * 1000
    if ms < 9.95:
        return f"{ms:.1f} ms"
    if round(ms) < 1000:
        return f"{ms:.0f} ms"
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    minutes = round(seconds / 60)
    if minutes < 100 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    hours = round(seconds / 3600)
    return f"{hours // 24}d{hours % 24:02d}h"


def duration_ms(ms: float | None, *, unknown: str = "unknown") -> str:
    """`duration` for a value in milliseconds (HTTP latency, PONG time)."""
    return unknown if ms is None else duration(ms / 1000, unknown=unknown)


def size(count: float | None, *, unknown: str = "?") -> str:
    """Bytes in binary units: `512 B`, `1.5 KiB`, `33.6 MiB` (one decimal above bytes)."""
    if count is None or not math.isfinite(count):
        return unknown
    value, sign = abs(float(count)), "-" if count < 0 else ""
    for unit in _SIZE_UNITS:
        if unit == "B" and round(value) < 1024:
            return f"{sign}{value:.0f} B"
        if unit != "B" and (round(value, 1) < 1024 or unit == _SIZE_UNITS[-1]):
            return f"{sign}{value:.1f} {unit}"
        value /= 1024
    return f"{sign}{value:.1f} {_SIZE_UNITS[-1]}"  # pragma: no cover - the loop returns


def count(n: float | None, *, unknown: str = "?") -> str:
    """A count: exact below 10,000, then `12.3k`, `123k`, `1.2M`, `4.5G`."""
    if n is None or not math.isfinite(n):
        return unknown
    value = float(n)
    if abs(value) < 10_000:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        scaled = value / scale
        if abs(round(scaled, 1)) < 1000 or unit == "G":
            return f"{scaled:.1f}{unit}" if abs(scaled) < 100 else f"{scaled:.0f}{unit}"
    return f"{value:.0f}"  # pragma: no cover - the loop returns


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above `value` (> 0): a scale that reads well and
    changes only when a reading crosses one of those lines."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        top = step * 10.0**exponent
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exponent + 1)  # pragma: no cover - 10 x 10^k always fits
