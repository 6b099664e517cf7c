"""The `metric(name, label=value, ...)` condition helper over a Prometheus exposition a probe parsed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keyword arguments are allowed in a condition only for these (label matchers).
KEYWORD_FUNCTIONS = ("metric",)


def _samples(names: Mapping[str, Any]) -> list[Any]:
    data = names.get("data")
    metrics = data.get("metrics") if isinstance(data, Mapping) else None
    samples = metrics.get("samples") if isinstance(metrics, Mapping) else None
    return samples if isinstance(samples, list) else []


def metric(names: Mapping[str, Any], name: Any, **labels: Any) -> float | None:
    """The sum of the values of the samples named `name` whose labels include every `labels`
    pair (values compared as text); None when no sample matches or nothing was parsed."""
    if not isinstance(name, str):
        raise ValueError(f"metric(): expected a metric name string, got {type(name).__name__}")
    wanted = {k: str(v) for k, v in labels.items()}
    total: float | None = None
    for sample in _samples(names):
        if not isinstance(sample, Mapping) or sample.get("name") != name:
            continue
        have = sample.get("labels") or {}
        if all(have.get(k) == v for k, v in wanted.items()):
            value = sample.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total = (total or 0.0) + value
    return total


CONTEXT_FUNCTIONS = {"metric": metric}
