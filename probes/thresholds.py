"""Default warn/fail thresholds of every probe; the config may override any of them."""

from __future__ import annotations

from typing import Any

# probe name -> setting -> default. Higher readings are worse unless a name says otherwise.
# These names are the keys accepted under `[environments.NAME.thresholds.PROBE]`.
DEFAULTS: dict[str, dict[str, float]] = {
    # PostgreSQL
    "connections": {"usage_warn": 0.70, "usage_fail": 0.90},
    "locks": {"blocked_warn_s": 0.0, "blocked_fail_s": 10.0},
    "replication": {
        "lag_bytes_warn": 16 * 1024 * 1024,
        "lag_bytes_fail": 256 * 1024 * 1024,
        "replay_lag_s_warn": 10.0,
        "replay_lag_s_fail": 60.0,
    },
    "long_queries": {"warn_s": 30.0, "fail_s": 300.0},
    "idle_in_transaction": {"warn_s": 30.0, "fail_s": 300.0},
    "slow_statements": {"mean_ms_warn": 100.0, "mean_ms_fail": 1000.0},
    # Redis
    "ping": {"latency_ms_warn": 50.0, "latency_ms_fail": 500.0},
    "memory": {"usage_warn": 0.80, "usage_fail": 0.95},
    "clients": {"usage_warn": 0.80, "usage_fail": 0.95, "blocked_warn": 50.0},
    "queues": {"depth_warn": 100.0, "depth_fail": 1000.0, "age_s_warn": 60.0, "age_s_fail": 300.0},
    # HTTP (latency thresholds may also be set per endpoint)
    "http": {"latency_ms_warn": 500.0, "latency_ms_fail": 2000.0, "cert_days_warn": 21.0, "cert_days_fail": 7.0},
    # DNS and TCP (also per target: latency_warn_ms / connect_warn_ms ...)
    "dns": {"latency_warn_ms": 200.0, "latency_fail_ms": 1000.0},
    "tcp": {"connect_warn_ms": 200.0, "connect_fail_ms": 1000.0},
    # Docker
    # restarts_fail counts while the container has been up less than restart_window_s: old
    # restarts of a container that has run fine since are history (warn), not a crash loop.
    "containers": {
        "restarts_warn": 1.0,
        "restarts_fail": 3.0,
        "restart_window_s": 600.0,
        "cpu_pct_warn": 90.0,
        "mem_pct_warn": 90.0,
    },
}


class Thresholds:
    """Thresholds of one environment: defaults overlaid with the config's values."""

    def __init__(self, overrides: dict[str, dict[str, float]] | None = None) -> None:
        self._values = {probe: dict(values) for probe, values in DEFAULTS.items()}
        for probe, values in (overrides or {}).items():
            self._values[probe].update(values)

    def get(self, probe: str, name: str) -> float:
        return self._values[probe][name]

    def of(self, probe: str) -> dict[str, float]:
        return dict(self._values[probe])

    def as_dict(self) -> dict[str, Any]:
        return {probe: dict(values) for probe, values in self._values.items()}
