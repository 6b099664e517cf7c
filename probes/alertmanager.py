"""Alertmanager as a source: the alerts it holds (`/api/v2/alerts`), as one ProbeResult.

The result's `data.alerts` lists every alert, firing, silenced or inhibited alike (a silenced
alert is still worth seeing during an incident), each with its name, severity, labels, since
when, state and annotations (`runbook_url` included); only firing alerts that are neither
silenced nor inhibited count toward the status.
"""

from __future__ import annotations

import time
from typing import Any

from probes.config_sources import AlertmanagerTarget
from probes.prometheus import Session, describe_error, sourced
from probes.result import ProbeResult, Status, guarded
from probes.thresholds import Thresholds

KIND = "alertmanager"
SOURCE = "alertmanager"
PROBES = ("alerts",)
MAX_ALERTS = 500  # kept in data; the counts stay exact
# Severity label values read as a failure; anything else firing is a warning.
CRITICAL = ("critical", "page", "error", "high")
_SEVERITY_RANK = {"critical": 0, "page": 0, "error": 1, "high": 1, "warning": 2, "warn": 2, "info": 4, "none": 5}

__all__ = ["KIND", "PROBES", "Session", "alerts_of", "collect"]


class AlertmanagerError(Exception):
    """The API answered, but not with a list of alerts."""


def _alert(raw: dict[str, Any]) -> dict[str, Any]:
    labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()}
    status = raw.get("status") or {}
    silenced, inhibited = list(status.get("silencedBy") or []), list(status.get("inhibitedBy") or [])
    state = "silenced" if silenced else "inhibited" if inhibited else str(status.get("state") or "active")
    return {
        "name": labels.get("alertname", "?"),
        "severity": labels.get("severity", ""),
        "labels": labels,
        "annotations": annotations,
        "runbook_url": annotations.get("runbook_url", ""),
        "starts_at": str(raw.get("startsAt") or ""),
        "state": "firing" if state == "active" else state,
        "silenced_by": silenced,
        "inhibited_by": inhibited,
        "fingerprint": str(raw.get("fingerprint") or ""),
    }


def alerts_of(body: Any) -> list[dict[str, Any]]:
    """The alerts of a `/api/v2/alerts` answer, firing first, then by severity, oldest first."""
    if not isinstance(body, list) or not all(isinstance(a, dict) for a in body):
        raise AlertmanagerError("not an Alertmanager v2 alert list")
    alerts = [_alert(a) for a in body]
    alerts.sort(key=lambda a: (a["state"] != "firing", _SEVERITY_RANK.get(a["severity"].lower(), 3), a["starts_at"], a["name"]))
    return alerts


def _summary(target: str, alerts: list[dict[str, Any]]) -> tuple[Status, str, int]:
    firing = [a for a in alerts if a["state"] == "firing"]
    quiet = len(alerts) - len(firing)
    tail = f" ({quiet} silenced or inhibited)" if quiet else ""
    if not firing:
        return Status.OK, f"{target}: no alerts firing{tail}", 0
    names = ", ".join(dict.fromkeys(a["name"] for a in firing))
    names = names if len(names) <= 60 else names[:59] + "…"
    critical = any(a["severity"].lower() in CRITICAL for a in firing)
    word = "alert" if len(firing) == 1 else "alerts"
    return (Status.FAIL if critical else Status.WARN), f"{target}: {len(firing)} {word} firing: {names}{tail}", len(firing)


async def collect(target: AlertmanagerTarget, thresholds: Thresholds, *, timeout: float = 2.0,
                  session: Session | None = None) -> list[ProbeResult]:
    """The alerts of `target`, as one `alerts` result; never raises."""
    own = session or Session(target)

    async def work() -> list[ProbeResult]:
        started = time.perf_counter()
        response = await own.client().get("/api/v2/alerts", timeout=timeout)
        response.raise_for_status()
        try:
            alerts = alerts_of(response.json())
        except ValueError:
            raise AlertmanagerError("not an Alertmanager v2 alert list") from None
        status, summary, firing = _summary(target.name, alerts)
        # firing_names: what a runbook's `- {alert: NAME}` trigger looks for (runbooks/front_matter.py).
        names = list(dict.fromkeys(a["name"] for a in alerts if a["state"] == "firing"))
        data = {"source": SOURCE, "firing": firing, "firing_names": names, "count": len(alerts), "alerts": alerts[:MAX_ALERTS]}
        ms = (time.perf_counter() - started) * 1000
        return [ProbeResult(target.name, KIND, "alerts", status, summary, value=float(firing), data=data, elapsed_ms=ms)]

    def describe(exc: BaseException) -> str | None:
        if isinstance(exc, AlertmanagerError):
            return str(exc)
        text = describe_error(exc)
        return text.replace("Prometheus", "Alertmanager") if text else None

    try:
        return sourced(await guarded(target.name, KIND, PROBES, work(), timeout=timeout, describe_error=describe), SOURCE)
    finally:
        if session is None:
            await own.aclose()
