"""Test helpers for a real Docker engine: the skip-or-fail gate and labelled, cleaned-up containers."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.sandbox.docker import DEFAULT_URL, IMAGE, engine_available, ensure_image

REQUIRE_ENV = "WARROOM_REQUIRE_DOCKER"
TEST_LABEL = "warroom.test"


def engine_url_or_skip() -> str:
    """The engine's URL; otherwise skip with the reason (or fail when WARROOM_REQUIRE_DOCKER=1)."""
    url = os.environ.get("DOCKER_HOST")
    reason = None
    if not url:
        if Path(DEFAULT_URL.removeprefix("unix://")).exists():
            url = DEFAULT_URL
        else:
            reason = "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock is missing (start one with .ci/dockerd.sh)"
    if url and engine_available(timeout=3.0) is None:
        reason = f"no Docker engine: {url} does not answer a ping"
    if reason:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires one)", pytrace=False)
        pytest.skip(reason)
    assert url is not None
    return url


class Containers:
    """Starts containers for one test run, all labelled so one call removes exactly them."""

    def __init__(self, url: str) -> None:
        import docker

        self.url = url
        self.client = docker.DockerClient(base_url=url, timeout=30)
        self.run_id = secrets.token_hex(3)
        ensure_image(self.client)

    def name(self, suffix: str) -> str:
        return f"wr-test-{self.run_id}-{suffix}"

    def run(self, suffix: str, command: str, **options: Any) -> str:
        """Start a busybox container (network none) running `sh -c command`; returns its name."""
        name = self.name(suffix)
        self.client.containers.run(
            IMAGE,
            ["sh", "-c", command],
            name=name,
            labels={TEST_LABEL: self.run_id},
            network_mode="none",
            detach=True,
            **options,
        )
        return name

    def inspect(self, name: str) -> dict[str, Any]:
        return self.client.api.inspect_container(name)

    def wait_until(self, name: str, predicate: Any, *, timeout: float = 20.0) -> dict[str, Any]:
        """Poll `docker inspect` until predicate(inspect) holds (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect(name)
            if predicate(info):
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not reach the expected state in {timeout}s: {info['State']}")
            time.sleep(0.2)

    def remove_all(self) -> list[str]:
        found = self.client.api.containers(all=True, filters={"label": f"{TEST_LABEL}={self.run_id}"})
        for info in found:
            self.client.api.remove_container(info["Id"], force=True)
        return [info["Names"][0] for info in found]

    def close(self) -> None:
        self.client.close()


def containers_fixture(url: str) -> Iterator[Containers]:
    """Body of a fixture: yields a Containers and removes everything it started afterwards."""
    pool = Containers(url)
    try:
        yield pool
    finally:
        pool.remove_all()
        pool.close()


def health(info: dict[str, Any]) -> str | None:
    return (info["State"].get("Health") or {}).get("Status")
