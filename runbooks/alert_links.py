"""Which bundled or configured runbook an Alertmanager alert's `runbook_url` names.

In order: the alertmanager entry's `runbook_urls` mapping (URL -> runbook id); `warroom://runbook/ID`;
the URL's last path segment as a runbook id or file name (`.../runbooks/replication-lag.md`,
kube-prometheus style `.../postgres/replication-lag`); then a runbook whose triggers name the
alert (`- {alert: NAME}`); else None: the operator gets the URL to copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from runbooks.catalog import RunbookEntry

SCHEME = "warroom://runbook/"


def _candidates(url: str) -> list[str]:
    if url.startswith(SCHEME):
        return [unquote(url.removeprefix(SCHEME)).strip("/")]
    path = unquote(urlsplit(url).path or url).rstrip("/")
    last = path.rpartition("/")[2]
    names = [last]
    for suffix in (".md", ".html", ".htm"):
        if last.endswith(suffix):
            names.append(last.removesuffix(suffix))
    return [n for n in names if n]


def runbook_for(url: str, entries: Iterable[RunbookEntry], mapping: Mapping[str, str] | None = None) -> RunbookEntry | None:
    """The runbook `url` names, or None when none matches."""
    url = (url or "").strip()
    if not url:
        return None
    by_id: dict[str, RunbookEntry] = {}
    by_file: dict[str, RunbookEntry] = {}
    for entry in entries:
        by_id[entry.id] = entry
        by_file.setdefault(entry.path.name, entry)
        by_file.setdefault(entry.path.stem, entry)
    mapped = (mapping or {}).get(url)
    if mapped:
        return by_id.get(mapped)
    for name in _candidates(url):
        found = by_id.get(name) or by_file.get(name) or by_id.get(name.lower())
        if found:
            return found
    return None


def naming_alert(name: str, entries: Iterable[RunbookEntry]) -> RunbookEntry | None:
    """The first runbook whose front matter has the trigger `- {alert: NAME}`."""
    pattern = re.compile(r"\{\s*alert\s*:\s*[\"']?" + re.escape(name) + r"[\"']?\s*\}")
    for entry in entries:
        try:
            head = entry.path.read_text(encoding="utf-8").split("\n---", 1)[0]
        except (OSError, UnicodeDecodeError):
            continue
        if pattern.search(head):
            return entry
    return None


def runbook_for_alert(alert: Mapping[str, Any], entries: Iterable[RunbookEntry], mapping: Mapping[str, str] | None = None) -> RunbookEntry | None:
    """The runbook of one alert from `probes.alertmanager`: the one its `runbook_url` names,
    else one whose triggers name the alert; None when neither."""
    entries = list(entries)
    url = str(alert.get("runbook_url") or "")
    return (runbook_for(url, entries, mapping) if url else None) or naming_alert(str(alert.get("name") or ""), entries)
