"""The classifiers' answer: read (a step may run it), action (needs consent) or refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["read", "action", "refused"]


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    reason: str  # why, for `runbook show` and the confirmation dialog
    calls: tuple[str, ...] = ()  # the functions / commands that make it an action
    functions: tuple[str, ...] = ()  # SQL: every function call seen, allowed or not

    @property
    def read_only(self) -> bool:
        return self.verdict == "read"
