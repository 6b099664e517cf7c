"""Which runbook is suggested first, and `goto runbook:ID` hand-overs (no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.config import DockerTarget, Environment
from runbooks.catalog import RunbookEntry, find_runbooks, rank_suggestions
from runbooks.conditions import EvalError
from runbooks.loader import load_runbooks, parse_runbook
from runbooks.model import Branch
from runbooks.runner import (
    Outcome,
    RunContext,
    StepOutcome,
    describe_action,
    not_applicable,
    run_runbook,
)


def entry(rid: str, severity: str = "high", handovers: tuple[str, ...] = ()) -> RunbookEntry:
    return RunbookEntry(rid, rid.replace("-", " ").title(), severity, Path(f"{rid}.md"), "", handovers)


def test_a_runbook_handed_over_to_comes_before_the_one_that_hands_over() -> None:
    # The triage runbook is critical and would win on severity alone.
    entries = [entry("db-failures", "critical", ("pool-exhausted",)), entry("pool-exhausted", "high")]
    found = {"db-failures": ["primary connections: value >= 0.95"], "pool-exhausted": ["primary connections: value >= 0.8"]}
    assert rank_suggestions(found, entries) == ["pool-exhausted", "db-failures"]
    # Not suggested, not listed; alone, the triage runbook is first.
    assert rank_suggestions({"db-failures": ["x"]}, entries) == ["db-failures"]


def test_hand_overs_count_through_suggested_runbooks_only() -> None:
    entries = [entry("service", "critical", ("db",)), entry("db", "critical", ("pool",)),
               entry("pool", "high", ("locks",)), entry("locks", "high", ("db",))]
    # A chain: service -> db -> pool puts pool first, then db, then service.
    assert rank_suggestions({"service": ["a"], "db": ["b"], "pool": ["c"]}, entries) == ["pool", "db", "service"]
    # pool -> locks -> db closes a loop only through `locks`, which is not suggested here.
    assert rank_suggestions({"db": ["b"], "pool": ["c"]}, entries) == ["pool", "db"]


def test_a_loop_of_hand_overs_falls_back_to_matching_triggers_then_severity() -> None:
    entries = [entry("db", "critical", ("pool",)), entry("pool", "high", ("locks",)), entry("locks", "high", ("db",))]
    found = {"db": ["b"], "pool": ["c"], "locks": ["primary locks: value > 0", "primary connections: data.waiting >= 3"]}
    assert rank_suggestions(found, entries)[0] == "locks"  # more of its symptoms are present
    found["locks"] = ["primary locks: value > 0"]
    assert rank_suggestions(found, entries) == ["db", "locks", "pool"]  # severity, then title


def test_the_bundled_hand_overs_are_read_alike_by_the_sidebar_and_the_loader() -> None:
    runbooks, problems = load_runbooks()
    assert problems == []
    parsed = {rb.id: rb.handovers for rb in runbooks}
    listed = {e.id: e.handovers for e in find_runbooks()}
    assert listed == parsed
    # The triage runbooks hand over to the specific ones (the order of suggestions follows).
    assert "connection-pool-exhausted" in parsed["database-connection-failures"]
    assert {"database-connection-failures", "redis-connection-failure"} <= set(parsed["service-unavailable"])
    assert "lock-contention" in parsed["slow-queries-high-latency"]
    assert "queue-backlog" in parsed["redis-memory-pressure"]


HANDING = """---
id: handing
title: Hands over
severity: low
---
## Diagnosis
1. **Nothing to see.**
   <!-- step: id=look -->
2. **Follow the other runbook.**
   <!-- step: id=follow on_pass="goto runbook:other" -->
3. Not reached.
"""


def test_goto_runbook_is_a_hand_over_and_a_headless_walk_ends_there() -> None:
    rb, problems = parse_runbook(HANDING, "handing.md")
    assert rb is not None, problems
    step = rb.step("follow")
    assert step is not None and step.on_pass == Branch("runbook", "other") and step.on_pass.handover == "other"
    assert str(step.on_pass) == "goto runbook:other" and rb.handovers == ("other",)


async def test_a_headless_walk_stops_at_the_hand_over_and_names_the_next_runbook() -> None:
    rb, _ = parse_runbook(HANDING, "handing.md")
    assert rb is not None
    report = await run_runbook(rb, Environment(name="empty"))
    statuses = {o.step_id: o.status for o in report.outcomes}
    assert statuses == {"look": Outcome.MANUAL, "follow": Outcome.MANUAL, "not-reached": Outcome.SKIPPED}
    assert report.handover == "other" and report.to_json()["handover"] == "other"
    assert report.notes == ["follow hands over to runbook other: continue with `warroom runbook run other`"]


@pytest.mark.parametrize(("branch", "message"), [
    ("goto runbook:", "expected 'goto runbook:ID'"),
    ("goto runbook:Not_An_Id", "expected 'goto runbook:ID'"),
])
def test_a_malformed_hand_over_is_a_load_error_at_its_line(branch: str, message: str) -> None:
    text = HANDING.replace('on_pass="goto runbook:other"', f'on_pass="{branch}"')
    rb, problems = parse_runbook(text, "handing.md")
    assert rb is None and len(problems) == 1, problems
    assert problems[0].line == 9 and message in problems[0].message, problems


def test_a_hand_over_to_a_missing_runbook_or_to_itself_is_a_load_problem(tmp_path: Path) -> None:
    (tmp_path / "handing.md").write_text(HANDING)
    (tmp_path / "self.md").write_text(HANDING.replace("id: handing", "id: self-ref").replace("runbook:other", "runbook:self-ref"))
    runbooks, problems = load_runbooks([tmp_path], bundled=False)
    assert {rb.id for rb in runbooks} == {"handing", "self-ref"}  # still usable
    messages = sorted(str(p) for p in problems)
    assert len(messages) == 2, messages
    assert messages[0].endswith("handing.md:9: on_pass: goto runbook:other: no such runbook (known: handing, self-ref)")
    assert messages[1].endswith("self.md:9: on_pass: goto runbook:self-ref: a runbook cannot hand over to itself")


def test_a_docker_step_without_a_docker_engine_says_why_and_no_python_error_shows() -> None:
    rb = {r.id: r for r in load_runbooks()[0]}["service-unavailable"]
    containers, restart = rb.step("containers"), rb.step("restart-failed")
    assert containers is not None and restart is not None
    why = not_applicable(restart, Environment(name="no-docker"))
    assert why == "does not apply here: no Docker engine 'docker' in environment 'no-docker' (targets: none)"
    # With an engine whose containers all run, there is nothing to restart: said in words.
    env = Environment(name="with-docker", docker=DockerTarget())
    assert not_applicable(restart, env) == ""
    healthy = StepOutcome("containers", Outcome.PASS, "docker: 2 containers running",
                          data={"containers": [{"name": "api", "state": "running", "health": "healthy"}]})
    with pytest.raises(EvalError) as caught:
        describe_action(restart, RunContext(rb.id, outcomes={"containers": healthy}), env)
    assert "nothing to choose from (no item matched)" in str(caught.value) and "max()" not in str(caught.value)


def test_triggers_look_only_at_the_readings_they_name_and_only_at_new_ones() -> None:
    from probes.result import ProbeResult, Status
    from runbooks.model import Readings, triggered

    rb, problems = parse_runbook("---\nid: t\ntitle: T\nseverity: high\ntriggers:\n"
                                 "  - {probe: http, when: \"data.status_code >= 500\"}\n"
                                 "  - {target: primary, probe: locks, when: \"value > 0\"}\n---\n# T\n\n"
                                 "## Diagnosis\n1. **Look.**\n", "t.md")
    assert rb is not None, problems

    def http(name: str, code: int) -> ProbeResult:
        return ProbeResult(name, "http", "http", Status.OK, name, data={"status_code": code})

    fleet = [http(f"t{i}", 200) for i in range(50)] + [http("api", 503)]
    locks = ProbeResult("replica", "postgres", "locks", Status.OK, "", value=3)  # not the target named
    first = Readings([*fleet, locks])
    assert triggered(rb, first) == ["api http: data.status_code >= 500"]
    assert len(first.memo) == len(fleet)  # the replica's locks were never looked at
    # The next pass: api healed (a new reading), the others unchanged (the same objects).
    fleet[-1] = http("api", 200)
    fleet[0] = http("t0", 502)
    second = Readings([*fleet, locks], first.memo)
    assert triggered(rb, second) == ["t0 http: data.status_code >= 500"]
    # Unchanged readings keep their verdict without being evaluated: a poisoned memo shows it.
    third = Readings(fleet, {k: (r, True) for k, (r, _) in second.memo.items() if r is fleet[5]})
    assert "t5 http: data.status_code >= 500" in triggered(rb, third)
