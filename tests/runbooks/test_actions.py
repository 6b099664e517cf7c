"""Redis and Docker actions, run for real: refused unless confirmed, done when confirmed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from probes.config import DockerTarget, Environment
from runbooks.commands import docker_call
from runbooks.conditions import EvalError
from runbooks.journal import Journal
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import (
    Outcome,
    RunContext,
    describe_action,
    execute_action,
    run_runbook,
    run_step,
)
from tests.conftest import SandboxHandle
from tests.dockerd import Containers, containers_fixture, engine_url_or_skip


def _runbook(rb_id: str, steps: str) -> Runbook:
    """A runbook of `steps` (Markdown) under a minimal front matter."""
    text = f"---\nid: {rb_id}\ntitle: {rb_id}\nseverity: low\n---\n{steps}"
    rb, problems = parse_runbook(text, "test.md")
    assert rb is not None, problems
    return rb


def _journaled(tmp_path: Path, rb: Runbook, env: Environment) -> tuple[Journal, RunContext]:
    journal = Journal(tmp_path / "j.sqlite3")
    return journal, RunContext(rb.id, journal=journal, incident_id=journal.start_incident(env.name, [rb.id]))


# --- Redis ----------------------------------------------------------------------------------


def _unlinker(key: str) -> Runbook:
    return _runbook("unlinker", f"""1. **Is the key there?**
   ```redis target=redis id=exists pass="value == 1"
   EXISTS {key}
   ```
2. **Drop it.**
   ```redis target=redis id=drop
   UNLINK {key}
   ```
""")


@pytest.fixture
def redis_key(sandbox: SandboxHandle) -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(sandbox.admin_dsn("redis"))  # warroom's read user cannot SET
    key = f"warroom-test:victim-{secrets.token_hex(3)}"
    client.set(key, "still here")
    yield client, key
    client.delete(key)
    client.close()


async def test_redis_action_runs_only_when_confirmed_and_not_read_only(sandbox: SandboxHandle, redis_key, tmp_path: Path) -> None:
    client, key = redis_key
    rb = _unlinker(key)
    assert rb.step("drop").kind == "action" and rb.step("exists").kind == "redis"
    env = sandbox.env
    journal, context = _journaled(tmp_path, rb, env)
    assert (await run_step(rb.step("exists"), env, context=context)).status == Outcome.PASS
    description = describe_action(rb.step("drop"), context, env)
    assert description.startswith(f"run Redis command `UNLINK {key}` on redis (")

    # The headless walk and run_step refuse it; declined and read-only refuse it too.
    report = await run_runbook(rb, env, read_only=False)
    assert {o.step_id: o.status for o in report.outcomes}["drop"] == Outcome.REFUSED
    assert (await run_step(rb.step("drop"), env, context=context)).status == Outcome.REFUSED
    declined = await execute_action(rb.step("drop"), env, context=context, confirmed=False, read_only=False)
    read_only = await execute_action(rb.step("drop"), env, context=context, confirmed=True, read_only=True)
    assert declined.status == read_only.status == Outcome.REFUSED
    assert client.get(key) == b"still here"

    done = await execute_action(rb.step("drop"), env, context=context, confirmed=True, read_only=False)
    assert done.status == Outcome.PASS, done.summary
    assert done.value == 1  # UNLINK's count of removed keys
    assert client.exists(key) == 0
    assert [e.kind for e in journal.events(context.incident_id)] == ["probe", "action-declined", "action-declined", "action"]


# --- Docker ---------------------------------------------------------------------------------


@pytest.fixture
def pool() -> Iterator[Containers]:
    yield from containers_fixture(engine_url_or_skip())


def _restarter(name: str) -> Runbook:
    return _runbook("restarter", f"""1. **Is it running?**
   ```docker target=docker id=state pass="data.state == 'running'"
   inspect {name}
   ```
2. **Restart it.**
   ```docker target=docker id=restart
   docker restart {name}
   ```
""")


def _started_at(pool: Containers, name: str) -> str:
    return pool.inspect(name)["State"]["StartedAt"]


@pytest.mark.docker
async def test_docker_restart_runs_only_when_confirmed_and_only_on_the_targets_containers(pool: Containers, tmp_path: Path) -> None:
    # Exits at once on SIGTERM (a shell as PID 1 would ignore it: a 10 s restart).
    command = "trap 'exit 0' TERM; sleep 300 & wait"
    mine, other = pool.run("mine", command), pool.run("other", command)
    env = Environment("lab", docker=DockerTarget(name="docker", base_url=pool.url, containers=(mine,)))
    rb = _restarter(mine)
    journal, context = _journaled(tmp_path, rb, env)
    assert (await run_step(rb.step("state"), env, context=context)).status == Outcome.PASS
    assert describe_action(rb.step("restart"), context, env) == f"restart container {mine} on Docker engine docker ({pool.url})"
    before = _started_at(pool, mine)

    declined = await execute_action(rb.step("restart"), env, context=context, confirmed=False, read_only=False)
    read_only = await execute_action(rb.step("restart"), env, context=context, confirmed=True, read_only=True)
    assert declined.status == read_only.status == Outcome.REFUSED
    assert _started_at(pool, mine) == before

    done = await execute_action(rb.step("restart"), env, context=context, confirmed=True, read_only=False, timeout=20)
    assert done.status == Outcome.PASS, done.summary
    assert _started_at(pool, mine) != before
    assert pool.inspect(mine)["State"]["Running"]

    # The same action aimed at a container the target does not list is refused before any
    # confirmation (describe_action) and, asked directly, by the engine call as well.
    other_before = _started_at(pool, other)
    stray_step = _restarter(other).step("restart")
    with pytest.raises(EvalError, match=f"container {other} is not one of docker's containers"):
        describe_action(stray_step, context, env)
    stray = await execute_action(stray_step, env, context=context, confirmed=True, read_only=False, timeout=20)
    assert stray.status == Outcome.REFUSED and "not one of docker's containers" in stray.summary
    with pytest.raises(PermissionError, match=f"container {other} is not one of docker's containers"):
        await docker_call(env, env.docker, (), f"restart {other}", 20, read=False)
    assert _started_at(pool, other) == other_before
    kinds = [e.kind for e in journal.events(context.incident_id)]
    assert kinds == ["probe", "action-declined", "action-declined", "action", "action-declined"]
