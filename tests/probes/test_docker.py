"""The Docker probe and the sandbox's Docker component against a real engine (busybox, no network)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probes import docker as probe
from probes.config import DockerTarget
from probes.result import ProbeResult, Status
from probes.thresholds import Thresholds
from tests.dockerd import Containers, containers_fixture, engine_url_or_skip, health
from tui.sandbox.docker import LABEL, DockerContainers

TIMEOUT = 2.0
HEALTH_1S = {"interval": 1_000_000_000, "timeout": 2_000_000_000, "retries": 1, "start_period": 0}


@pytest.fixture(scope="session")
def docker_url() -> str:
    """The engine under test; skips (or fails with WARROOM_REQUIRE_DOCKER=1) without one."""
    return engine_url_or_skip()


@pytest.fixture()
def pool(docker_url: str) -> Iterator[Containers]:
    yield from containers_fixture(docker_url)


def target(url: str, *names: str) -> DockerTarget:
    return DockerTarget(name="engine", base_url=url, containers=names)


def row(result: ProbeResult, name: str) -> dict[str, Any]:
    return next(c for c in result.data["containers"] if c["name"] == name)


async def read(url: str, *names: str, session: probe.Session | None = None) -> ProbeResult:
    [result] = await probe.collect(target(url, *names), Thresholds(), timeout=TIMEOUT, session=session)
    assert result.kind == "docker" and result.probe == "containers" and result.target == "engine"
    return result


async def read_until(url: str, names: tuple[str, ...], predicate: Any, *, within: float = 25.0) -> ProbeResult:
    """Probe with one Session until predicate(result) holds (bounded)."""
    session = probe.Session(target(url, *names))
    deadline = time.monotonic() + within
    try:
        while True:
            result = await read(url, *names, session=session)
            if predicate(result) or time.monotonic() > deadline:
                return result
            await asyncio.sleep(0.5)
    finally:
        await session.aclose()


# --- containers started by the tests --------------------------------------------------------


@pytest.mark.docker
async def test_healthy_container_reads_ok_with_its_figures(pool: Containers) -> None:
    name = pool.run("ok", "while :; do sleep 5; done", healthcheck={"test": ["CMD-SHELL", "test -f /bin/sh"], **HEALTH_1S}, mem_limit="64m")
    pool.wait_until(name, lambda i: health(i) == "healthy")
    session = probe.Session(target(pool.url, name))
    try:
        first = await read(pool.url, name, session=session)
        client = session.client
        assert first.status is Status.OK, first.summary
        assert first.value == 0
        assert first.elapsed_ms < TIMEOUT * 1000
        assert first.data["engine_version"] and first.data["missing"] == []
        c = row(first, name)
        assert (c["state"], c["health"], c["restart_count"], c["oom_killed"]) == ("running", "healthy", 0, False)
        assert c["image"] == "warroom/busybox:latest" and len(c["id"]) == 12
        assert c["exit_code"] is None  # it never exited
        assert c["uptime_s"] > 0
        assert isinstance(c["cpu_pct"], float) and 0 <= c["cpu_pct"] < 100
        assert c["mem_limit"] == 64 * 1024 * 1024 and 0 < c["mem_bytes"] < c["mem_limit"]
        assert 0 < c["mem_pct"] < 100
        # Within a few seconds the next refresh asks only for the listing: the inspect data and
        # figures of a healthy running container are reused.
        def inspected_at() -> float:
            (only,) = session.inspected.values()  # this test's one container
            return only[2]

        stats_at, first_inspect = session.stats_at, inspected_at()
        again = row(await read(pool.url, name, session=session), name)
        assert session.stats_at == stats_at and inspected_at() == first_inspect
        assert (again["cpu_pct"], again["mem_bytes"], again["restart_count"]) == (c["cpu_pct"], c["mem_bytes"], 0)
        assert again["uptime_s"] >= c["uptime_s"]  # computed from the start time, not cached
        # Once they are due, the refresh reuses the client and measures CPU over the interval
        # since the previous stats round, not since the container started.
        await asyncio.sleep(1.0)
        session.stats_every_s = session.inspect_every_s = 0.5
        second = await read(pool.url, name, session=session)
        assert session.client is client
        assert session.stats_at != stats_at and inspected_at() != first_inspect
        c2 = row(second, name)
        assert second.status is Status.OK and isinstance(c2["cpu_pct"], float)
        assert c2["cpu_window_s"] < c2["uptime_s"]
    finally:
        await session.aclose()


@pytest.mark.docker
async def test_unhealthy_container_fails_and_is_named(pool: Containers) -> None:
    good = pool.run("good", "while :; do sleep 5; done")
    bad = pool.run("sick", "while :; do sleep 5; done", healthcheck={"test": ["CMD-SHELL", "false"], **HEALTH_1S})
    pool.wait_until(bad, lambda i: health(i) == "unhealthy")
    result = await read(pool.url, good, bad)
    assert result.status is Status.FAIL
    assert f"{bad} unhealthy" in result.summary and good not in result.summary
    assert result.value == 1
    assert row(result, bad)["health"] == "unhealthy"
    assert row(result, good)["health"] is None  # no health check: not counted against it
    # Each row carries the probe's own verdict, so views need not judge containers again.
    assert (row(result, bad)["status"], row(result, bad)["why"]) == ("fail", "unhealthy")
    assert (row(result, good)["status"], row(result, good)["why"]) == ("ok", "")


@pytest.mark.docker
async def test_crash_looping_container_fails_with_restarts_and_exit_code(pool: Containers) -> None:
    name = pool.run("crash", "sleep 1; exit 3", restart_policy={"Name": "on-failure", "MaximumRetryCount": 10})

    def looping(result: ProbeResult) -> bool:
        c = row(result, name)
        return result.status is Status.FAIL and c["restart_count"] > 0 and c["exit_code"] == 3

    result = await read_until(pool.url, (name,), looping)
    c = row(result, name)
    assert result.status is Status.FAIL, result.summary
    assert c["restart_count"] > 0 and c["exit_code"] == 3, c
    assert name in result.summary and ("restarting" in result.summary or "crash-looping" in result.summary)


@pytest.mark.docker
async def test_exited_non_zero_and_missing_containers_fail(pool: Containers) -> None:
    done = pool.run("done", "exit 0")
    failed = pool.run("failed", "exit 4")
    for name in (done, failed):
        pool.wait_until(name, lambda i: i["State"]["Status"] == "exited")
    ghost = pool.name("never-created")
    result = await read(pool.url, done, failed, ghost)
    assert result.status is Status.FAIL
    assert row(result, done)["exit_code"] == 0 and row(result, failed)["exit_code"] == 4
    assert f"{failed} exited with code 4" in result.summary
    assert f"{ghost} missing" in result.summary and result.data["missing"] == [ghost]
    assert done not in result.summary  # a clean exit is not a problem
    assert result.value == 2


@pytest.mark.docker
async def test_without_a_filter_every_container_is_listed(pool: Containers) -> None:
    name = pool.run("listed", "while :; do sleep 5; done")
    result = await read(pool.url)
    assert name in {c["name"] for c in result.data["containers"]}
    assert result.status is not Status.ERROR, result.summary


@pytest.mark.docker
async def test_collect_never_blocks_the_event_loop(pool: Containers) -> None:
    names = [pool.run(f"busy{i}", "while :; do sleep 5; done") for i in range(3)]
    for name in names:
        pool.wait_until(name, lambda i: i["State"]["Running"])
    await asyncio.sleep(0.5)  # a container up for no time at all has no CPU% yet
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    result = await read(pool.url, *names)
    stop.set()
    await task
    assert result.status is Status.OK, result.summary
    assert all(isinstance(row(result, n)["cpu_pct"], float) for n in names)
    # The SDK's blocking calls ran in threads: one on the loop would stall it for its stats wait
    # (about a second). The bound leaves room for a loaded CI machine; it is no latency budget.
    assert len(gaps) > 5 and max(gaps) < 0.5, max(gaps)


# --- the sandbox component --------------------------------------------------------------


@pytest.mark.docker
async def test_sandbox_component_crashloop_scenario(docker_url: str, tmp_path: Path) -> None:
    component = DockerContainers(tmp_path, base_url=docker_url)
    try:
        await component.start()
        fragment = component.config()["docker"]
        names = tuple(fragment["containers"])
        assert fragment["base_url"] == docker_url and len(names) == 4
        assert all(n.startswith(component.prefix) for n in names)
        fresh = await read_until(docker_url, names, lambda r: r.status is Status.OK, within=10)
        assert fresh.status is Status.OK, fresh.summary
        # The crash-loop container exists from the start, created but not started: not a fault.
        created = row(fresh, component.container_name("batch"))
        assert (created["state"], created["status"]) == ("created", "ok"), created

        await component.inject("container-crashloop")
        crasher, sick = component.container_name("batch"), component.container_name("worker")

        def drill(result: ProbeResult) -> bool:
            return sick in result.summary and row(result, crasher)["restart_count"] > 0

        broken = await read_until(docker_url, names, drill)
        assert broken.status is Status.FAIL and drill(broken), broken.summary
        assert row(broken, sick)["health"] == "unhealthy"
        assert row(broken, sick)["status"] == "fail"
        # One restart is a warning; a few in a row make it a crash loop (the thresholds).
        assert row(broken, crasher)["status"] in ("warn", "fail"), row(broken, crasher)

        await component.heal("container-crashloop")
        healed = await read_until(docker_url, names, lambda r: r.status is Status.OK, within=10)
        assert healed.status is Status.OK, healed.summary
        assert row(healed, crasher)["restart_count"] == 0
    finally:
        await component.stop()
    import docker

    client = docker.DockerClient(base_url=docker_url, timeout=30)
    try:
        left = client.api.containers(all=True, filters={"label": f"{LABEL}={component.run_id}"})
        assert left == [], [c["Names"] for c in left]
    finally:
        client.close()


@pytest.mark.docker
async def test_sandbox_drill_through_the_cli(sandbox, docker_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = sandbox.env.docker
    if engine is None:
        pytest.skip("the sandbox started without Docker")
    [fresh] = await probe.collect(engine, sandbox.env.thresholds, timeout=TIMEOUT)
    assert fresh.status is Status.OK, fresh.summary
    with sandbox.scenario("container-crashloop"):
        broken = await read_until(engine.base_url, engine.containers, lambda r: r.status is Status.FAIL)
        assert broken.status is Status.FAIL and "unhealthy" in broken.summary, broken.summary
    healed = await read_until(engine.base_url, engine.containers, lambda r: r.status is Status.OK, within=10)
    assert healed.status is Status.OK, healed.summary


# --- engines that cannot be reached (no engine needed) ----------------------------------


async def test_missing_socket_is_one_clear_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no-such.sock"
    started = time.perf_counter()
    results = await probe.collect(target(url), Thresholds(), timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    assert len(results) == 1
    [result] = results
    assert result.status is Status.ERROR
    assert result.summary == f"engine: engine not reachable at {url} (is dockerd running?)"
    assert elapsed < TIMEOUT + 0.5


@contextlib.contextmanager
def silent_socket(path: Path) -> Iterator[None]:
    """A unix socket that accepts connections and never answers (a hung engine)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        server.close()


async def test_silent_engine_is_one_error_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "hung.sock"
    timeout = 1.0
    with silent_socket(path):
        started = time.perf_counter()
        results = await probe.collect(target(f"unix://{path}"), Thresholds(), timeout=timeout)
        elapsed = time.perf_counter() - started
    assert len(results) == 1
    [result] = results
    assert result.status is Status.ERROR
    assert f"engine at unix://{path} did not answer within 1s" in result.summary
    assert elapsed < timeout + 0.5


async def test_bad_url_is_an_error_not_an_exception() -> None:
    [result] = await probe.collect(target("ftp://127.0.0.1:21"), Thresholds(), timeout=TIMEOUT)
    assert result.status is Status.ERROR
    assert "cannot use ftp://127.0.0.1:21 as a Docker engine URL" in result.summary


async def test_password_in_url_is_never_shown(tmp_path: Path) -> None:
    url = "tcp://admin:hunter22@127.0.0.1:1"
    [result] = await probe.collect(target(url), Thresholds(), timeout=TIMEOUT)
    assert result.status is Status.ERROR
    assert "hunter22" not in result.summary and "hunter22" not in str(result.to_json())
