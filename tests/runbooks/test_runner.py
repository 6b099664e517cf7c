"""The runner: branches, bounded walks, and lock-contention against the real sandbox."""

from __future__ import annotations

import re
from pathlib import Path

from probes.config import Environment, PostgresTarget
from runbooks.loader import find_runbook, parse_runbook
from runbooks.runner import Outcome, RunContext, run_runbook, run_step
from tests.conftest import SandboxHandle, warroom

BRANCHY = """---
id: branchy
title: Branches
severity: low
---
## Diagnosis
1. **Probe a target the config does not have.**
   ```probe
   id: first
   target: nowhere
   probe: locks
   on_fail: goto path-b
   ```
2. Never reached.

## Path A
3. Not on the path.
   ```sql target=primary
   select pg_terminate_backend(1)
   ```

## Path B: the one we take
4. Operator does something.
   <!-- step: id=do-it on_pass="goto end" -->
5. Skipped by the jump.

## End
6. Back to the start would loop.
   <!-- step: id=end on_pass="goto first" -->
"""


async def test_branches_are_followed_and_the_walk_is_bounded() -> None:
    rb, problems = parse_runbook(BRANCHY, "branchy.md")
    assert rb is not None, problems
    # A PostgreSQL target on a loopback port nothing listens on: the probe is an error.
    env = Environment(name="refusing", postgres=(PostgresTarget("nowhere", "postgresql://warroom@127.0.0.1:1/none"),))
    report = await run_runbook(rb, env)
    by_id = {o.step_id: o for o in report.outcomes}
    assert [o.step_id for o in report.outcomes][:4] == ["first", "never-reached", "not-on-the-path", "do-it"]
    assert by_id["first"].status == Outcome.ERROR and by_id["first"].summary.startswith("nowhere: "), by_id["first"]
    assert by_id["never-reached"].status == Outcome.SKIPPED
    assert by_id["not-on-the-path"].status == Outcome.SKIPPED
    assert by_id["do-it"].status == Outcome.MANUAL
    assert by_id["skipped-by-the-jump"].status == Outcome.SKIPPED
    assert by_id["end"].status == Outcome.MANUAL
    assert len(report.outcomes) == len(rb.steps)  # every step accounted for exactly once
    assert any("would repeat a step" in n for n in report.notes)
    assert not report.ok


async def test_a_step_whose_target_is_not_configured_is_skipped_and_the_walk_goes_on() -> None:
    rb, _ = parse_runbook(BRANCHY, "branchy.md")
    assert rb is not None
    report = await run_runbook(rb, Environment(name="empty"))
    by_id = {o.step_id: o for o in report.outcomes}
    # Not an error and not its on_fail branch: the step says why it does not apply, and the
    # walk goes on with the next step (an action on a missing target too).
    first = by_id["first"]
    assert first.status == Outcome.SKIPPED
    assert first.summary == "does not apply here: no PostgreSQL target 'nowhere' in environment 'empty' (targets: none)"
    assert by_id["never-reached"].status == Outcome.MANUAL
    action = by_id["not-on-the-path"]
    assert action.status == Outcome.SKIPPED and "no PostgreSQL target 'primary'" in action.summary
    assert by_id["do-it"].status == Outcome.MANUAL


async def test_action_steps_never_run_through_run_step() -> None:
    rb, _ = parse_runbook(BRANCHY, "branchy.md")
    assert rb is not None
    outcome = await run_step(rb.step("not-on-the-path"), Environment(name="empty"))
    assert outcome.status == Outcome.REFUSED


def _holder_pid(message: str) -> int:
    match = re.search(r"lock holder pid (\d+)", message)
    assert match, message
    return int(match.group(1))


async def test_lock_contention_runbook_finds_the_blocker_then_passes_when_healed(sandbox: SandboxHandle) -> None:
    rb = find_runbook("lock-contention")
    with sandbox.scenario("lock-contention") as message:
        pid = _holder_pid(message)
        context = RunContext(rb.id)
        report = await run_runbook(rb, sandbox.env, context=context)
        by_id = {o.step_id: o for o in report.outcomes}
        assert by_id["primary-up"].status == Outcome.PASS
        blocker = by_id["find-blocker"]
        assert blocker.status == Outcome.FAIL
        assert f"root blocker pid {pid}" in blocker.summary
        assert blocker.data["chains"][0]["blocker_pid"] == pid
        # The culprit's owner is named: application, user and client address.
        chain = blocker.data["chains"][0]
        assert chain["usename"] and chain["client_addr"] == "127.0.0.1", chain
        assert f"app {chain['application_name'] or '-'}, user {chain['usename']}, from 127.0.0.1)" in blocker.summary
        assert all({"usename", "application_name", "client_addr"} <= set(s) for s in chain["blocked_sessions"])
        # The blocker is idle in its transaction: Path B, terminate, offered but refused headless.
        assert by_id["blocker-state"].status == Outcome.FAIL and "idle in transaction" in by_id["blocker-state"].summary
        assert by_id["cancel-blocker"].status == Outcome.SKIPPED
        refused = by_id["terminate-blocker"]
        assert refused.status == Outcome.REFUSED and f"terminate backend pid {pid} on primary" in refused.summary
        assert by_id["verify"].status == Outcome.FAIL
        assert not report.ok
    report = await run_runbook(rb, sandbox.env)
    by_id = {o.step_id: o for o in report.outcomes}
    assert by_id["find-blocker"].status == Outcome.PASS
    assert by_id["terminate-blocker"].status == Outcome.SKIPPED
    assert report.ok, [o.to_json() for o in report.outcomes]


def test_headless_cli_exit_codes(sandbox: SandboxHandle, tmp_path: Path) -> None:
    config = str(sandbox.config_path)
    with sandbox.scenario("lock-contention") as message:
        pid = _holder_pid(message)
        failed = warroom("runbook", "run", "lock-contention", "--config", config)
        assert failed.returncode == 1, failed.stderr
        assert re.search(rf"^fail\s+find-blocker .*root blocker pid {pid}", failed.stdout, re.M), failed.stdout
        assert re.search(r"^refused\s+terminate-blocker", failed.stdout, re.M)
    passed = warroom("runbook", "run", "lock-contention", "--config", config, "--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    unknown = warroom("runbook", "run", "no-such-runbook", "--config", config)
    assert unknown.returncode == 2 and "unknown runbook 'no-such-runbook'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = tmp_path / "bad.md"
    bad.write_text("---\nid: bad\ntitle: Bad\nseverity: low\n---\n1. x\n   ```probe\n   target: primary\n   probe: nope\n   ```\n")
    broken = warroom("runbook", "run", str(bad), "--config", config)
    assert broken.returncode == 2 and f"{bad}:7: unknown probe 'nope'" in broken.stderr
    no_config = warroom("runbook", "run", "lock-contention", "--config", str(tmp_path / "missing.toml"))
    assert no_config.returncode == 2 and "no such file" in no_config.stderr


async def test_replication_lag_runbook_offers_resume(sandbox: SandboxHandle) -> None:
    rb = find_runbook("replication-lag")
    with sandbox.scenario("replication-lag"):
        report = await run_runbook(rb, sandbox.env, read_only=True)
        by_id = {o.step_id: o for o in report.outcomes}
        assert by_id["replica-connected"].status == Outcome.PASS
        assert by_id["replay-paused"].status == Outcome.FAIL and "replay is paused" in by_id["replay-paused"].summary
        assert by_id["resume-replay"].status == Outcome.REFUSED
        assert "resume WAL replay on replica" in by_id["resume-replay"].summary
        assert not report.ok
