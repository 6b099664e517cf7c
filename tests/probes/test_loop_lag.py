"""A busy event loop is warroom's lag, not the target's latency (real loopback HTTP server).

The server runs in a thread of this process; when a request arrives it blocks the test's
event loop with a synchronous sleep (as 300 readings to parse, or any synchronous call,
would) and answers while the loop is blocked. A probe that timed the request by the wall
clock would report the block as the endpoint's latency, or call it timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from probes import http as probe
from probes.config import HttpTarget
from probes.lag import PatientTimeout, monitor
from probes.result import ProbeResult, Status, guarded

BLOCK_S = 0.5
SERVER_DELAY_S = 0.05


class _Listener(ThreadingHTTPServer):
    # The default backlog (5) drops the SYNs of a burst of new connections: they would wait
    # the kernel's 1 s retransmission and read as a slow server.
    request_queue_size = 128
    daemon_threads = True


class Server:
    """A loopback HTTP server that answers after `delay_s`; with `block_loop`, it then blocks
    `loop` for BLOCK_S before answering, so the answer arrives while the loop cannot read it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_s: float) -> None:
        self.loop = loop
        self.delay_s = delay_s
        self.block_loop = False
        self.blocked = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                time.sleep(server.delay_s)
                if server.block_loop:
                    server.block_loop = False
                    server.loop.call_soon_threadsafe(server._block)
                    server.blocked.wait(2)
                body = b'{"ok": true}'
                with contextlib.suppress(OSError):  # a client that timed out has gone
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _Listener(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"

    def _block(self) -> None:
        self.blocked.set()
        time.sleep(BLOCK_S)  # the event loop is stuck here: no reading, no timer, nothing


@contextlib.contextmanager
def serving(delay_s: float = SERVER_DELAY_S) -> Iterator[Server]:
    server = Server(asyncio.get_running_loop(), delay_s)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


async def test_a_loop_blocked_while_the_answer_arrives_is_not_the_endpoints_latency() -> None:
    with serving() as server:
        target = HttpTarget("api", server.url, latency_warn_ms=300.0, latency_fail_ms=1000.0)
        session = probe.Session(target)
        try:
            warm = await probe.http(target, timeout=2.0, session=session)
            assert warm.status is Status.OK, warm.summary
            server.block_loop = True
            started = time.perf_counter()
            result = await probe.http(target, timeout=2.0, session=session)
            wall_ms = (time.perf_counter() - started) * 1000
        finally:
            await session.aclose()
    assert server.blocked.is_set()
    assert wall_ms >= BLOCK_S * 1000  # the loop really was blocked during this request
    assert result.status is Status.OK, result.summary
    # The server's own time (50 ms), give or take the monitor's 20 ms precision and a loaded
    # machine: not the half second the loop was blocked.
    assert SERVER_DELAY_S * 1000 * 0.8 <= result.value < 250, result.data
    assert result.data["loop_lag_ms"] >= 300, result.data
    assert result.data["phases"]["total_ms"] == result.value


async def test_a_blocked_loop_does_not_time_out_a_healthy_endpoint() -> None:
    # Timeout 0.3 s, answer after 0.1 s, but the loop is blocked 0.5 s then: the endpoint
    # was healthy all along, and the probe's timeout waits for the loop's lost time.
    with serving(delay_s=0.1) as server:
        target = HttpTarget("api", server.url)
        server.block_loop = True
        result = await probe.http(target, timeout=0.3)
    assert server.blocked.is_set()
    assert result.status is Status.OK, result.summary
    assert not result.data.get("timeout")
    assert result.value is not None and result.value < 350, result.data


async def test_a_hung_endpoint_still_times_out_at_its_timeout() -> None:
    with serving(delay_s=3.0) as server:
        target = HttpTarget("api", server.url)
        started = time.perf_counter()
        result = await probe.http(target, timeout=0.3)
        took = time.perf_counter() - started
    assert result.status is Status.ERROR and result.data.get("timeout") is True, result.summary
    assert "timed out after 0.3s" in result.summary and "busy" not in result.summary
    assert 0.3 <= took < 1.5


async def test_guarded_leaves_the_loops_own_stall_out_of_elapsed_and_timeout() -> None:
    async def work() -> list[ProbeResult]:
        await asyncio.sleep(0.01)
        time.sleep(BLOCK_S)  # a synchronous call on the loop: warroom's time, not the target's
        await asyncio.sleep(0.05)
        return [ProbeResult("db", "postgres", "connections", Status.OK, "db: ok")]

    [result] = await guarded("db", "postgres", ("connections",), work(), timeout=0.3)
    assert result.status is Status.OK, result.summary
    assert result.elapsed_ms < 250, result.elapsed_ms


async def test_patient_timeout_extends_by_the_stall_up_to_its_bound() -> None:
    # A loop that stalls again and again: the deadline moves, but not without end.
    started = time.perf_counter()
    scope = PatientTimeout(0.2, max_extra_s=0.2)
    try:
        async with scope:
            while True:
                time.sleep(0.1)
                await asyncio.sleep(0)
    except TimeoutError:
        pass
    took = time.perf_counter() - started
    assert 0.4 <= took < 0.8, took
    assert 0.15 <= scope.lag_s <= 0.2


async def test_the_monitor_only_runs_while_a_probe_is_in_flight() -> None:
    lag = monitor()
    async with PatientTimeout(1.0):
        assert lag._handle is not None
    assert lag._handle is None
