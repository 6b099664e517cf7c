"""Docker actions work as documented: every verb (rm too) is a real SDK call, in any case."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes.config import DockerTarget, Environment
from runbooks.classify import DOCKER_ACTIONS, classify_docker
from runbooks.commands import SDK_METHODS, docker_words
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runner import Outcome, RunContext, describe_action, execute_action, run_step
from tests.dockerd import Containers, containers_fixture, engine_url_or_skip


def test_every_action_verb_is_a_method_of_the_sdks_container() -> None:
    from docker.models.containers import Container

    assert set(SDK_METHODS) == DOCKER_ACTIONS
    for verb, method in SDK_METHODS.items():
        assert callable(getattr(Container, method, None)), f"docker {verb}: Container has no {method}()"
    assert SDK_METHODS["rm"] == "remove"  # Container has no rm()


@pytest.mark.parametrize("command", ["DOCKER RESTART Web", "docker Restart Web", "RESTART Web", "Docker restart Web"])
def test_command_words_are_case_insensitive_names_are_not(command: str) -> None:
    assert docker_words(command) == ["restart", "Web"]
    verdict = classify_docker(command.split())
    assert verdict.verdict == "action" and verdict.calls == ("restart",)


def _runbook(steps: str) -> Runbook:
    rb, problems = parse_runbook(f"---\nid: dock\ntitle: dock\nseverity: low\n---\n{steps}", "dock.md")
    assert rb is not None, problems
    return rb


def test_an_upper_case_action_loads_and_is_described_like_a_lower_case_one() -> None:
    rb = _runbook("1. **Restart.**\n   ```docker target=docker id=restart\n   DOCKER RESTART api\n   ```\n"
                  "2. **Look.**\n   ```docker target=docker id=look\n   Docker INSPECT api\n   ```\n")
    assert [s.kind for s in rb.steps] == ["action", "docker"]
    assert describe_action(rb.step("restart")) == "restart container api on Docker engine docker"


@pytest.fixture
def pool() -> Iterator[Containers]:
    yield from containers_fixture(engine_url_or_skip())


@pytest.mark.docker
async def test_stop_then_rm_removes_the_container_and_rm_of_a_running_one_fails_cleanly(pool: Containers) -> None:
    command = "trap 'exit 0' TERM; sleep 300 & wait"  # exits at once on SIGTERM
    gone, running = pool.run("gone", command), pool.run("running", command)
    env = Environment("lab", docker=DockerTarget(name="docker", base_url=pool.url, containers=(gone, running)))
    rb = _runbook(f"""1. **Stop it.**
   ```docker target=docker id=stop
   DOCKER STOP {gone}
   ```
2. **Remove it.**
   ```docker target=docker id=remove
   docker RM {gone}
   ```
3. **Remove the running one.**
   ```docker target=docker id=remove-running
   rm {running}
   ```
4. **Is it still there?**
   ```docker target=docker id=still pass="data.state == 'running'"
   INSPECT {running}
   ```
""")
    context = RunContext(rb.id)
    assert describe_action(rb.step("remove"), context, env) == f"rm container {gone} on Docker engine docker ({pool.url})"

    stopped = await execute_action(rb.step("stop"), env, context=context, confirmed=True, read_only=False, timeout=20)
    assert stopped.status == Outcome.PASS, stopped.summary
    assert not pool.inspect(gone)["State"]["Running"]
    removed = await execute_action(rb.step("remove"), env, context=context, confirmed=True, read_only=False, timeout=20)
    assert removed.status == Outcome.PASS, removed.summary
    assert removed.data == {"container": gone, "done": "rm"}
    assert gone not in {c.name for c in pool.client.containers.list(all=True)}

    # As `docker rm` does, a running container is not removed: the step says why.
    refused = await execute_action(rb.step("remove-running"), env, context=context, confirmed=True, read_only=False, timeout=20)
    assert refused.status == Outcome.ERROR and "running container" in refused.summary, refused.summary
    assert (await run_step(rb.step("still"), env, context=context)).status == Outcome.PASS
