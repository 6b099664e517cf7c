"""The Alerts drill-down: every alert the configured Alertmanagers hold, Enter opens its runbook."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from probes.secrets import redact
from runbooks.alert_links import runbook_for_alert
from tui.screens.details import DetailScreen, fill_table
from widgets.store import format_age

HIDDEN_LABELS = ("alertname", "severity")  # shown in their own columns


def since(starts_at: str, now: float | None = None) -> str:
    """How long an alert has been firing, from Alertmanager's RFC 3339 `startsAt`."""
    try:
        started = datetime.fromisoformat(starts_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "-"
    return format_age(max(0.0, (time.time() if now is None else now) - started))


def label_text(labels: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in HIDDEN_LABELS)


class AlertsDetail(DetailScreen):
    """Alerts from Alertmanager (firing first, then silenced and inhibited), as they update."""

    TITLE = "Alerts"
    PROBES = ("alerts",)
    BINDINGS: ClassVar[list[Binding]] = [
        *DetailScreen.BINDINGS,
        Binding("c", "copy_url", "Copy runbook URL", id="alerts.copy"),
    ]
    DEFAULT_CSS = """
    AlertsDetail #alert-note { padding: 0 1; height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._alerts: dict[str, tuple[dict[str, Any], str]] = {}  # row key -> (alert, alertmanager)

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Label("Alerts (Enter: open the runbook its runbook_url names)", classes="section")
            table: DataTable[str] = DataTable(id="alerts", cursor_type="row")
            table.add_columns("", "alert", "severity", "state", "since", "labels", "runbook", "from")
            yield table
            yield Static("", id="alert-note")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#alerts", DataTable).focus()

    def _mapping(self, source: str) -> dict[str, str]:
        target = next((t for t in self.app.env.alertmanager if t.name == source), None)
        return dict(target.runbook_urls) if target else {}

    def refresh_view(self) -> None:
        rows: list[tuple[str, list[object]]] = []
        self._alerts = {}
        now = time.time()
        notes = []
        for reading in self.app.store.readings("alerts"):
            result = reading.result
            if result.kind != "alertmanager":
                continue
            if reading.stale or result.status.value == "error":
                notes.append(redact(reading.latest.summary))
            for i, alert in enumerate(result.data.get("alerts") or []):
                key = f"{result.target}:{alert.get('fingerprint') or i}"
                entry = runbook_for_alert(alert, self.app.runbooks, self._mapping(result.target))
                runbook = entry.id if entry else (redact(alert.get("runbook_url") or "") or "-")
                state = "fail" if alert["state"] == "firing" and alert["severity"].lower() in ("critical", "page") else (
                    "warn" if alert["state"] == "firing" else "ok")
                rows.append((key, [state, alert["name"], alert["severity"] or "-", alert["state"], since(alert["starts_at"], now),
                                   label_text(alert["labels"]), runbook, result.target]))
                self._alerts[key] = (alert, result.target)
        if not self.app.env.alertmanager:
            notes.append("no Alertmanager configured: add [[environments.NAME.alertmanager]] name, url to the config")
        elif not rows and not notes:
            notes.append("no alerts" if self.app.store.readings("alerts") else "waiting for Alertmanager…")
        fill_table(self.query_one("#alerts", DataTable), rows)
        self.query_one("#alert-note", Static).update("\n".join(notes))

    def _selected(self) -> tuple[dict[str, Any], str] | None:
        table = self.query_one("#alerts", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._alerts.get(str(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        found = self._alerts.get(str(event.row_key.value))
        if found is None:
            return
        alert, source = found
        entry = runbook_for_alert(alert, self.app.runbooks, self._mapping(source))
        if entry is not None:
            self.app.open_runbook(entry.id)
            return
        self._show_url(alert, copied=False)

    def action_copy_url(self) -> None:
        found = self._selected()
        if found is not None:
            self._show_url(found[0], copied=True)

    def _show_url(self, alert: dict[str, Any], *, copied: bool) -> None:
        url = str(alert.get("runbook_url") or "")
        note = self.query_one("#alert-note", Static)
        if not url:
            note.update(f"{alert['name']}: no runbook_url, and no runbook names this alert in its triggers")
            return
        # OSC 52: the terminal puts it on the clipboard (over SSH too, where the terminal allows it).
        self.app.copy_to_clipboard(url)
        head = "copied" if copied else "no bundled runbook matches; copied"
        note.update(f"{alert['name']}: {head} {redact(url)}")
