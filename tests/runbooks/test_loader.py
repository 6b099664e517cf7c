"""Loading runbooks: the bundled ones load, malformed ones are reported with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.loader import BUNDLED_DIR, LoadError, find_runbook, load_runbooks, parse_runbook

GOOD = """---
id: sample
title: Sample
severity: low
tags: [x]
---
# Sample

## Diagnosis
1. **Check locks.** Why it matters.
   ```probe
   id: locks
   target: primary
   probe: locks
   pass: "value == 0"
   on_fail: goto resolution-path-b
   ```
2. Look at the dashboard.
   <!-- step: id=look on_fail=stop -->
3. Count sessions.
   ```sql target=primary pass="value < 10"
   select count(*) from pg_stat_activity where state = 'active'
   ```

## Resolution Path A: wait
4. Wait for it.
   ```sql target=primary on_pass="goto verify"
   select pg_cancel_backend({{ steps.locks.data.chains[0].blocker_pid }})
   ```

## Resolution Path B: kill
5. Kill it.
   ```sql target=primary
   select 'pg_terminate_backend' as looks_scary
   ```

## Verify
6. Done.
   ```redis target=cache id=verify
   PING
   ```
"""


def test_bundled_runbooks_load_cleanly() -> None:
    runbooks, problems = load_runbooks()
    assert problems == []
    ids = {r.id for r in runbooks}
    assert {"lock-contention", "replication-lag"} <= ids
    lock = next(r for r in runbooks if r.id == "lock-contention")
    kinds = {s.id: s.kind for s in lock.steps}
    assert kinds["find-blocker"] == "probe" and kinds["blocker-state"] == "sql"
    assert kinds["terminate-blocker"] == "action" and kinds["cancel-is-safe"] == "manual"


def test_steps_kinds_ids_and_branches() -> None:
    rb, problems = parse_runbook(GOOD, "sample.md")
    assert problems == [] and rb is not None
    assert [s.id for s in rb.steps] == ["locks", "look", "count-sessions", "wait-for-it", "kill-it", "verify"]
    assert [s.kind for s in rb.steps] == ["probe", "manual", "sql", "action", "sql", "redis"]
    assert str(rb.steps[0].on_fail) == "goto kill-it"  # a section prefix resolves to its first step
    assert str(rb.steps[1].on_fail) == "stop"
    assert str(rb.steps[3].on_pass) == "goto verify"
    assert rb.steps[0].title == "Check locks." and rb.steps[0].line == 11
    assert "pg_cancel_backend" in rb.steps[3].classification.calls


def _problems(text: str) -> list[str]:
    rb, problems = parse_runbook(text, "bad.md")
    assert rb is None
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ('pass: "value == 0"', 'pass: "value == = 0"', 11, "pass"),
        ('pass: "value == 0"', "pass: \"__import__('os')\"", 11, "only these functions"),
        ('pass: "value == 0"', 'pass: "data.__class__"', 11, "not allowed"),
        ("probe: locks", "probe: lockz", 11, "unknown probe 'lockz'"),
        ("goto resolution-path-b", "goto nowhere", 11, "no such step id or section"),
        ('```sql target=primary pass="value < 10"', '```sql pass="value < 10"', 21, "needs target"),
        ("PING", "KEYS *", 39, "KEYS blocks Redis"),
        ("select count(*) from pg_stat_activity where state = 'active'", "select 1; select 2", 21, "one statement"),
        ("severity: low", "severity: urgent", 4, "severity"),
        ("tags: [x]", "tags: [x\nfoo: 1", 6, "YAML"),
        ("## Verify\n6. Done.\n", "## Verify\n- Done.\n", 39, "inside a numbered step"),
    ],
)
def test_malformed_runbooks_name_file_and_line(old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    problems = _problems(GOOD.replace(old, new, 1))
    assert any(p.startswith(f"bad.md:{line}:") and words in p for p in problems), problems


def test_one_bad_runbook_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(GOOD)
    (tmp_path / "broken.md").write_text(GOOD.replace("id: sample", "id: broken").replace("probe: locks", "probe: nope"))
    runbooks, problems = load_runbooks([tmp_path], bundled=False)
    assert [r.id for r in runbooks] == ["sample"]
    assert len(problems) == 1 and str(problems[0]).startswith(f"{tmp_path / 'broken.md'}:11:")
    with pytest.raises(LoadError, match="broken.md:11"):
        find_runbook("broken", [tmp_path])
    with pytest.raises(LoadError, match="unknown runbook 'nope'"):
        find_runbook("nope", [tmp_path])


def test_extra_folder_overrides_bundled_by_id(tmp_path: Path) -> None:
    text = (BUNDLED_DIR / "lock-contention.md").read_text().replace("title: Lock contention", "title: Our locks", 1)
    (tmp_path / "ours.md").write_text(text)
    runbooks, _ = load_runbooks([tmp_path])
    assert next(r for r in runbooks if r.id == "lock-contention").title.startswith("Our locks")


def test_triggers_suggest_runbooks_from_readings() -> None:
    from probes.result import ProbeResult, Status
    from runbooks.model import triggered

    rb = find_runbook("lock-contention")
    calm = ProbeResult("primary", "postgres", "locks", Status.OK, "no session is blocked", 0.0, {"chains": []})
    busy = ProbeResult("primary", "postgres", "locks", Status.WARN, "3 blocked", 3.0, {"chains": []})
    elsewhere = ProbeResult("other", "postgres", "locks", Status.WARN, "3 blocked", 3.0, {})
    assert triggered(rb, [calm, elsewhere]) == []
    assert triggered(rb, [busy]) == ["primary locks: value > 0"]
