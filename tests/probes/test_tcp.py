"""The TCP probe against real loopback ports: the sandbox's, a closed one, one that never accepts."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Iterator

from probes import tcp as probe
from probes.config import TcpTarget
from probes.result import Status
from probes.thresholds import Thresholds
from tests.conftest import SandboxHandle
from tui.sandbox.base import LOOPBACK, free_port


def sandbox_port(sandbox: SandboxHandle) -> TcpTarget:
    return next(t for t in sandbox.env.tcp if t.name == "dns-tcp")


async def test_the_sandbox_port_accepts_connections_and_the_connect_is_timed(sandbox: SandboxHandle) -> None:
    target = sandbox_port(sandbox)
    [result] = await probe.collect(target, sandbox.env.thresholds, timeout=2.0)
    assert result.status is Status.OK, result.summary
    assert (result.kind, result.probe, result.target) == ("tcp", "tcp", "dns-tcp")
    assert result.data["address"] == f"{LOOPBACK}:{target.port}" == result.data["peer"]
    assert 0 < result.data["connect_ms"] == result.value < 1000
    assert result.summary == f"dns-tcp: {LOOPBACK}:{target.port} accepts connections in {probe.duration_ms(result.value)}"
    # A line below any loopback connect makes the same port slow: graded, and said so.
    [slow] = await probe.collect(target, Thresholds({"tcp": {"connect_warn_ms": 0.0001}}), timeout=2.0)
    assert slow.status is Status.WARN and "slow connect to" in slow.summary and "(warn at" in slow.summary, slow.summary


async def test_a_closed_port_is_refused_and_named() -> None:
    port = free_port()  # nothing listens there now
    target = TcpTarget("search", LOOPBACK, port)
    started = time.perf_counter()
    result = await probe.tcp(target, timeout=2.0)
    assert time.perf_counter() - started < 1.0  # a refusal is immediate, no timeout to wait for
    assert result.status is Status.ERROR and result.data["error"] == "refused"
    assert result.summary == f"search: connection refused at 127.0.0.1:{port} (is the service running?)"


@contextlib.contextmanager
def never_accepting() -> Iterator[int]:
    """A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs
    as it does behind a firewall that drops packets (all on loopback)."""
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((LOOPBACK, port))
            fillers.append(filler)
        yield port
    finally:
        for sock in (*fillers, server):
            sock.close()


async def test_a_port_that_never_accepts_times_out_within_the_timeout() -> None:
    with never_accepting() as port:
        await asyncio.sleep(0.05)  # the fillers' handshakes fill the queue
        target = TcpTarget("broker", LOOPBACK, port)
        started = time.perf_counter()
        result = await probe.tcp(target, timeout=0.5)
        took = time.perf_counter() - started
    assert 0.45 < took < 1.5, took
    assert result.status is Status.ERROR and result.data["error"] == "timeout" and result.data["timeout"] is True
    assert result.summary.startswith(f"broker: no answer connecting to 127.0.0.1:{port} within 0.5s"), result.summary


def test_unreachable_and_other_errors_are_told_apart() -> None:
    # Loopback is never unreachable: the kernel's errors are given here as it words them (no packet is sent).
    where = "127.0.0.9:25"
    assert probe.describe_os_error(OSError(errno.EHOSTUNREACH, "No route to host"), where) == (
        "unreachable", "host unreachable: 127.0.0.9:25 (routing or a firewall?)")
    assert probe.describe_os_error(OSError(errno.ENETUNREACH, "Network is unreachable"), where)[0] == "unreachable"
    assert probe.describe_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), where)[0] == "refused"
    kind, message = probe.describe_os_error(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "nope.invalid:25")
    assert kind == "dns" and message == "cannot resolve the host of nope.invalid:25: Name or service not known"
    assert probe.describe_os_error(OSError(errno.EPERM, "Operation not permitted"), where) == (
        "error", "cannot connect to 127.0.0.9:25: Operation not permitted")
