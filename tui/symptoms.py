"""What the cockpit's readings tell the journal: an incident opens at the first alarm, and each
symptom's first and last sighting is recorded (no Textual here; the app feeds it readings).

A symptom is a target reading that is not ok (warn, fail, or an error reaching the target). It
is journaled when it appears or changes state, and when it clears; not at every refresh. A
reading that is warroom's own failure (a backend raising a Python exception) is journaled as
a `warroom-error`, apart from the symptoms, and never opens an incident by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from probes.result import ProbeResult, Status

# `primary: TypeError: ...`: an unexpected exception inside warroom (guarded() and the
# scheduler print a Python exception's name only for what they did not expect).
_OWN = re.compile(r"^[^:]*: [A-Z][A-Za-z]*(Error|Exception): ")


def own_error(result: ProbeResult) -> bool:
    return result.status is Status.ERROR and bool(_OWN.match(result.summary))


@dataclass
class Seen:
    status: str
    first: float
    last: float
    summary: str
    result: ProbeResult | None = None  # the latest reading


class SymptomWatch:
    """Follows every reading's state; `log()` gives the IncidentLog to write to (created on
    first need, so a cockpit with nothing wrong never opens the journal)."""

    def __init__(self, log: Callable[[], Any]) -> None:
        self._log = log
        self.active: dict[tuple[str, str, str], Seen] = {}
        self._recorded: set[tuple[str, str, str]] = set()  # active symptoms already in the incident
        self._known: set[tuple[str, str, str]] = set()  # still wrong when the last incident closed

    @staticmethod
    def where(key: tuple[str, str, str]) -> str:
        return f"{key[1]} {key[2]}"  # "api http", "primary idle_in_transaction"

    def observe(self, results: Iterable[ProbeResult]) -> None:
        events: list[tuple[str, tuple[str, str, str], Seen, ProbeResult | None]] = []
        for result in results:
            key = result.key
            seen = self.active.get(key)
            if result.status is Status.OK:
                if seen is not None:
                    del self.active[key]
                    if key in self._recorded:
                        events.append(("cleared", key, seen, result))
                    self._recorded.discard(key)
                self._known.discard(key)
                continue
            status = "own" if own_error(result) else str(result.status)
            if seen is None or seen.status != status:
                first = seen.first if seen is not None else result.timestamp
                self.active[key] = Seen(status, first, result.timestamp, result.summary, result)
                events.append(("seen", key, self.active[key], result))
            else:
                seen.last, seen.summary, seen.result = result.timestamp, result.summary, result
        if events:
            self._write(events)

    def _write(self, events: list[tuple[str, tuple[str, str, str], Seen, ProbeResult | None]]) -> None:
        log = self._log()
        if log is None:
            return
        alarms = [r for what, key, seen, r in events
                  if what == "seen" and r is not None and seen.status != "own" and key not in self._known]
        if log.incident_id is None:
            if not alarms:
                return
            log.alarm(alarms[0])  # the first alarm opens (or joins) the environment's incident
            # Everything already wrong is part of it, not only what changed this refresh.
            events = [("seen", key, seen, None) for key, seen in self.active.items() if key not in self._known]
        for what, key, seen, result in events:
            if what == "cleared":
                log.symptom_end(self.where(key), seen, "cleared", ts=result.timestamp if result else None)
            elif seen.status == "own":
                log.own_error(self.where(key), seen)
            else:
                log.symptom(self.where(key), seen)
                self._recorded.add(key)

    def incident_closed(self) -> list[tuple[str, Seen]]:
        """The incident was closed: what is still wrong is known and opens no new incident until
        it clears and comes back. Returns those symptoms (the log writes them as still seen)."""
        still = [(self.where(key), seen) for key, seen in self.active.items() if key in self._recorded]
        self._known |= set(self.active)
        self._recorded.clear()
        return still

    def still_seen(self) -> list[tuple[str, Seen]]:
        """At exit: the symptoms of the incident not cleared yet, with their last sighting."""
        return [(self.where(key), seen) for key, seen in self.active.items() if key in self._recorded]
