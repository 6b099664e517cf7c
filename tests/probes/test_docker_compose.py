"""Compose-aware Docker against a real engine: one project's containers, service names, inspect and bounded logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probes import docker as probe
from probes import docker_reads
from probes.config import ConfigError, DockerTarget, Environment, parse_config
from probes.result import Status
from probes.thresholds import Thresholds
from runbooks.classify import classify_docker, docker_log_options
from runbooks.commands import docker_call
from runbooks.loader import parse_runbook
from runbooks.runner import Outcome, RunContext, describe_action, execute_action, run_step
from tests.dockerd import TEST_LABEL, Containers, containers_fixture, engine_url_or_skip, health
from tui.sandbox.docker import IMAGE
from widgets.services import container_line

TIMEOUT = 5.0
FOREVER = "while :; do sleep 5; done"
HEALTH_1S = {"interval": 1_000_000_000, "timeout": 2_000_000_000, "retries": 1, "start_period": 0}
SECRET = "hunter2-compose-secret"


class Project:
    """Containers labelled as Compose labels them, in projects named for this test run."""

    def __init__(self, pool: Containers) -> None:
        self.pool = pool
        self.name = f"wr{pool.run_id}"  # hex: a valid Compose project name
        self.other = f"wr{pool.run_id}other"

    def run(self, service: str, command: str = FOREVER, *, project: str | None = None, number: int = 1, **options: Any) -> str:
        project = project or self.name
        name = f"{project}-{service}-{number}"  # what Compose calls it
        labels = {TEST_LABEL: self.pool.run_id, probe.PROJECT_LABEL: project, probe.SERVICE_LABEL: service,
                  probe.NUMBER_LABEL: str(number), f"{probe.PROJECT_LABEL}.working_dir": "/srv/app"}
        self.pool.client.containers.run(IMAGE, ["sh", "-c", command], name=name, labels=labels,
                                        network_mode=options.pop("network_mode", "none"), detach=True, **options)
        return name

    def target(self, *containers: str, project: str | None = None) -> DockerTarget:
        return DockerTarget(name="docker", base_url=self.pool.url, containers=containers, compose_project=project or self.name)

    def env(self, *containers: str) -> Environment:
        return Environment("lab", docker=self.target(*containers))


@pytest.fixture
def pool() -> Iterator[Containers]:
    yield from containers_fixture(engine_url_or_skip())


@pytest.fixture
def project(pool: Containers) -> Project:
    return Project(pool)


async def read(target: DockerTarget) -> Any:
    [result] = await probe.collect(target, Thresholds(), timeout=TIMEOUT)
    return result


def _runbook(body: str) -> Any:
    rb, problems = parse_runbook(f"---\nid: compose\ntitle: compose\nseverity: low\n---\n{body}", "compose.md")
    assert rb is not None, problems
    return rb


# --- the probe -------------------------------------------------------------------------


@pytest.mark.docker
async def test_a_compose_target_lists_its_project_only_with_service_names(pool: Containers, project: Project) -> None:
    api = project.run("api")
    workers = [project.run("worker", number=n) for n in (1, 2)]
    stranger = project.run("api", project=project.other)
    loose = pool.run("loose", FOREVER)  # no Compose labels at all

    result = await read(project.target())
    assert result.status is Status.OK, result.summary
    rows = {c["name"]: c for c in result.data["containers"]}
    assert set(rows) == {api, *workers}  # not the other project's api, not the unlabelled one
    assert stranger not in result.summary and loose not in result.summary
    assert result.data["compose_project"] == project.name
    assert (rows[api]["service"], rows[api]["project"], rows[api]["replica"]) == ("api", project.name, None)
    # Two containers of one service: each row says which replica it is.
    assert sorted((rows[w]["service"], rows[w]["replica"]) for w in workers) == [("worker", "1"), ("worker", "2")]
    assert "_number" not in rows[api]

    # The Services pane shows the service name, and the replica where there are several.
    assert container_line(rows[api], "ok").plain.split()[1] == "api"
    assert container_line(rows[workers[1]], "ok").plain.split()[1:3] == ["worker", "2"]

    # `containers` may name services: "worker" is both of its containers; a missing one is named.
    narrowed = await read(project.target("worker", "ghost"))
    assert {c["name"] for c in narrowed.data["containers"]} == set(workers)
    assert narrowed.data["missing"] == ["ghost"] and narrowed.status is Status.FAIL

    # Without compose_project the same engine shows all of them, with their labels read.
    everything = await read(DockerTarget(name="docker", base_url=pool.url, containers=(api, stranger, loose)))
    services = {c["name"]: c["service"] for c in everything.data["containers"]}
    assert services == {api: "api", stranger: "api", loose: None}


@pytest.mark.docker
async def test_a_project_with_no_containers_is_empty_not_the_whole_engine(pool: Containers, project: Project) -> None:
    pool.run("loose", FOREVER)
    result = await read(project.target())
    assert result.status is Status.OK, result.summary
    assert result.data["containers"] == [] and "no containers" in result.summary


# --- inspect ---------------------------------------------------------------------------


@pytest.mark.docker
async def test_inspect_by_service_name_shows_settings_with_every_env_value_masked(project: Project, tmp_path: Path) -> None:
    name = project.run(
        "api",
        environment={"DB_PASSWORD": SECRET, "MODE": "blue", "EMPTY": ""},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        healthcheck={"test": ["CMD-SHELL", f"test -f /bin/sh && echo token={SECRET}"], **HEALTH_1S},
        volumes={str(tmp_path): {"bind": "/data", "mode": "ro"}},
    )
    project.pool.wait_until(name, lambda i: health(i) == "healthy")
    env = project.env()
    reply = await docker_call(env, env.docker, (), "inspect api", TIMEOUT, read=True)
    data = reply["data"]
    assert SECRET not in json.dumps(reply), "an environment value or the check's token leaked"
    assert (data["name"], data["service"], data["state"], data["health"]) == (name, "api", "running", "healthy")
    assert data["env"]["DB_PASSWORD"] == data["env"]["MODE"] == data["env"]["EMPTY"] == "****"
    assert set(data["env"]) == {"DB_PASSWORD", "MODE", "EMPTY"}  # the imported image sets none of its own
    assert data["restart_policy"] == {"name": "on-failure", "max_retries": 3}
    check = data["health_check"]
    assert check["form"] == "shell" and check["command"].startswith("test -f /bin/sh && echo token=")
    assert (check["interval_s"], check["timeout_s"], check["retries"]) == (1.0, 2.0, 1)
    assert data["health_log"] and data["health_log"][-1]["exit_code"] == 0
    assert data["mounts"] == [{"type": "bind", "source": str(tmp_path), "destination": "/data", "mode": "ro"}]
    assert data["network_mode"] == "none" and [n["name"] for n in data["networks"]] == ["none"]
    assert data["compose"] == {"project": project.name, "service": "api", "number": "1", "working_dir": "/srv/app"}
    summary = reply["summary"]
    assert summary.startswith(f"{name}: running, health healthy, 0 restart(s); restart on-failure; check `test -f")
    assert "mount(s)" in summary and "networks none" in summary
    assert reply["status"] == "ok" and reply["value"] == 0

    # The container's own name works too; a container without a health check says so.
    plain = project.run("cron", "sleep 300")
    cron = await docker_call(env, env.docker, (), f"inspect {plain}", TIMEOUT, read=True)
    assert cron["data"]["health_check"] is None and "no health check" in cron["summary"]
    assert cron["data"]["restart_policy"]["name"] == "no"


@pytest.mark.docker
async def test_a_runbook_step_reads_the_settings_through_the_runner(project: Project) -> None:
    project.run("api", restart_policy={"Name": "always"})
    rb = _runbook("""1. **Restart policy?**
   ```docker target=docker id=policy pass="data.restart_policy.name == 'always' and data.service == 'api'"
   inspect api
   ```
2. **Not ours.**
   ```docker target=docker id=stranger
   inspect ghost
   ```
""")
    env = project.env()
    passed = await run_step(rb.step("policy"), env, context=RunContext(rb.id))
    assert passed.status == Outcome.PASS, passed.summary
    missing = await run_step(rb.step("stranger"), env, context=RunContext(rb.id))
    assert missing.status == Outcome.ERROR
    assert f"no container or service of that name in Compose project {project.name} (its services: api)" in missing.summary


@pytest.mark.docker
async def test_nothing_outside_the_project_is_read_or_acted_on(pool: Containers, project: Project) -> None:
    ours = project.run("api")
    theirs = project.run("api", project=project.other)
    loose = pool.run("loose", "trap 'exit 0' TERM; sleep 300 & wait")
    env = project.env()
    for name in (theirs, loose):
        with pytest.raises(LookupError, match=f"no container or service of that name in Compose project {project.name}"):
            await docker_call(env, env.docker, (), f"inspect {name}", TIMEOUT, read=True)
        with pytest.raises(LookupError, match="Compose project"):
            await docker_call(env, env.docker, (), f"logs {name}", TIMEOUT, read=True)
    before = pool.inspect(loose)["State"]["StartedAt"]
    rb = _runbook(f"1. **Restart.**\n   ```docker target=docker id=restart\n   restart {loose}\n   ```\n")
    # The confirmation names the project the action is bounded to.
    assert describe_action(rb.step("restart"), RunContext(rb.id), env) == (
        f"restart container {loose} on Docker engine docker ({pool.url}, Compose project {project.name})")
    done = await execute_action(rb.step("restart"), env, context=RunContext(rb.id), confirmed=True, read_only=False, timeout=20)
    assert done.status == Outcome.ERROR and "Compose project" in done.summary, done.summary
    assert pool.inspect(loose)["State"]["StartedAt"] == before
    # The service name reaches the project's own container.
    data = (await docker_call(env, env.docker, (), "inspect api", TIMEOUT, read=True))["data"]
    assert data["name"] == ours


@pytest.mark.docker
async def test_a_service_with_several_containers_must_be_named_by_container(project: Project) -> None:
    first, second = project.run("worker", number=1), project.run("worker", number=2)
    env = project.env()
    with pytest.raises(LookupError, match=f"worker: service of Compose project {project.name} with 2 containers "
                                          f"\\({first}, {second}\\); name one of them"):
        await docker_call(env, env.docker, (), "inspect worker", TIMEOUT, read=True)
    data = (await docker_call(env, env.docker, (), f"inspect {second}", TIMEOUT, read=True))["data"]
    assert (data["name"], data["compose"]["number"]) == (second, "2")


# --- logs ------------------------------------------------------------------------------


def _wait_for_log(pool: Containers, name: str, text: bytes, within: float = 20.0) -> None:
    container = pool.client.containers.get(name)
    deadline = time.monotonic() + within
    while text not in container.logs():
        assert time.monotonic() < deadline, f"{name} never logged {text!r}"
        time.sleep(0.2)


@pytest.mark.docker
async def test_logs_since_keeps_only_the_window(project: Project) -> None:
    name = project.run("api", f"echo old; sleep 4; echo new; {FOREVER}")
    _wait_for_log(project.pool, name, b"new")
    env = project.env()
    # "new" is at most a moment old, "old" four seconds older: a 3 s window holds "new" only.
    recent = await docker_call(env, env.docker, (), "logs api --since 3s", TIMEOUT, read=True)
    assert recent["data"]["lines"] == ["new"], recent
    assert recent["data"]["since_s"] == 3 and recent["data"]["tail"] == 1000
    assert recent["summary"] == f"{name}: 1 log line(s) of the last 3s; last: new"
    hour = await docker_call(env, env.docker, (), "docker LOGS api --since 1h --tail 5", TIMEOUT, read=True)
    assert hour["data"]["lines"] == ["old", "new"] and hour["value"] == 2
    assert "of the last 1h" in hour["summary"]
    plain = await docker_call(env, env.docker, (), "logs api", TIMEOUT, read=True)
    assert plain["data"]["lines"] == ["old", "new"] and plain["data"]["since_s"] is None and plain["data"]["tail"] == 100


@pytest.mark.docker
async def test_logs_are_bounded_in_lines_and_bytes_keeping_the_newest(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 lines of ~1.5 KB (450 KB), one line of 100 KB without a break, then a last line.
    script = ("i=0; while [ $i -lt 300 ]; do head -c 1500 /dev/zero | tr '\\0' y; echo \" $i\"; i=$((i+1)); done; "
              f"head -c 100000 /dev/zero | tr '\\0' z; echo; echo the-end; {FOREVER}")
    name = project.run("api", script)
    _wait_for_log(project.pool, name, b"the-end")
    env = project.env()
    reply = await docker_call(env, env.docker, (), "logs api --tail 1000", TIMEOUT, read=True)
    data, lines = reply["data"], reply["data"]["lines"]
    assert lines[-1] == "the-end"  # the newest line is never the one left out
    assert lines[-2] == "z" * docker_reads.MAX_LINE_CHARS + " [line cut]"
    assert all(len(line) <= docker_reads.MAX_LINE_CHARS + len(" [line cut]") for line in lines)
    assert sum(len(line) + 1 for line in lines) <= docker_reads.MAX_LOG_BYTES
    assert data["dropped_for_size"] > 0 and len(lines) + data["dropped_for_size"] == 302
    assert lines[-3].endswith(" 299") and data["stopped"] is None
    assert f"{data['dropped_for_size']} older line(s) left out (over 256 KB)" in reply["summary"]
    tail = await docker_call(env, env.docker, (), "logs api --tail 2", TIMEOUT, read=True)
    assert len(tail["data"]["lines"]) == 2 and tail["data"]["lines"][-1] == "the-end"

    # The engine is not read past MAX_READ_BYTES (here lowered): the step says it stopped.
    monkeypatch.setattr(docker_reads, "MAX_READ_BYTES", 64 * 1024)
    cut = await docker_call(env, env.docker, (), "logs api --tail 1000", TIMEOUT, read=True)
    assert cut["data"]["stopped"] == "stopped reading after 64 KB" and "; stopped reading after 64 KB;" in cut["summary"]
    assert 64 * 1024 <= cut["data"]["bytes_read"] < 200 * 1024


@pytest.mark.parametrize("window", ["10d", "5", "1.5m", "-1m", "m", "2026-01-01", "10M", "1000000h", "１0m"])
def test_since_takes_seconds_minutes_or_hours_only(window: str) -> None:
    verdict = classify_docker(["logs", "api", "--since", window])
    assert verdict.verdict == "refused"
    assert verdict.reason.startswith("docker logs --since takes a duration in s, m or h (30s, 10m, 2h), got")


@pytest.mark.parametrize(
    ("rest", "expected"),
    [([], (100, None)), (["--since", "10m"], (1000, 600)), (["--since", "30s", "--tail", "5"], (5, 30)),
     (["--tail", "50"], (50, None)), (["--since", "2h"], (1000, 7200))],
)
def test_log_options(rest: list[str], expected: tuple[int, int | None]) -> None:
    assert docker_log_options(rest) == expected
    assert classify_docker(["logs", "api", *rest]).verdict == "read"


@pytest.mark.parametrize("rest", [["--since"], ["--since", "1m", "--since", "2m"], ["--follow"], ["--tail", "1001"], ["-f", "1m"]])
def test_other_log_options_are_refused(rest: list[str]) -> None:
    verdict = classify_docker(["logs", "api", *rest])
    assert verdict.verdict == "refused" and "docker logs NAME [--tail N] [--since 30s|10m|2h]" in verdict.reason


def test_a_bad_since_is_a_load_error_naming_the_line() -> None:
    body = "1. **Logs.**\n   ```docker target=docker\n   logs api --since 10d\n   ```\n"
    rb, problems = parse_runbook(f"---\nid: c\ntitle: c\nseverity: low\n---\n{body}", "c.md")
    assert rb is None
    assert [(p.line, "--since takes a duration" in p.message) for p in problems] == [(7, True)], problems


async def test_a_bad_since_is_refused_by_the_call_too() -> None:
    env = Environment("lab", docker=DockerTarget(name="docker", base_url="unix:///nonexistent.sock", compose_project="x"))
    with pytest.raises(PermissionError, match="--since takes a duration in s, m or h"):
        await docker_call(env, env.docker, (), "logs api --since 1d", TIMEOUT, read=True)


# --- config ----------------------------------------------------------------------------


def test_compose_project_config() -> None:
    text = '[environments.lab.docker]\nbase_url = "unix:///tmp/x.sock"\ncompose_project = "ghostworks"\n'
    assert parse_config(text).environment().docker.compose_project == "ghostworks"  # type: ignore[union-attr]
    assert parse_config(text.replace('compose_project = "ghostworks"\n', "")).environment().docker.compose_project == ""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"Ghostworks"', "expected a Compose project name: lower-case letters, digits, - and _ (as `docker compose ls` shows it), got 'Ghostworks'"),
     ('""', "expected a Compose project name"), ('"ghost works"', "got 'ghost works'"), ('"-ghost"', "got '-ghost'"),
     ("3", "expected str, got an integer 3"), ('["a"]', "expected str, got an array")],
)
def test_bad_compose_project_names_the_key_and_line(value: str, expected: str) -> None:
    text = f'[environments.lab.docker]\nbase_url = "unix:///tmp/x.sock"\ncompose_project = {value}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "w.toml")
    assert caught.value.key == "environments.lab.docker.compose_project" and caught.value.line == 3
    assert expected in str(caught.value)
