"""CPU per HTTP probe, httpx's transport against probes/http_wire.py (a script, not a pytest test).

    python tests/perf/bench_http_client.py              # 2000 probes per figure, 5 repeats
    python tests/perf/bench_http_client.py -n 500 -r 3  # quicker

The loopback server runs in a child process, so only the probing process's CPU is counted
(time.process_time: CPU, not wall time, since other work shares this machine). Each figure is
the best and the median of the repeats, in ms of CPU per probe, beside the budget: 300
targets at refresh 1 s are 300 probes a second, and with the cockpit's own work they must stay
within 25 % of a core; the probe path's share is 0.3 ms a probe (9 % of a core).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import h11  # noqa: E402
import httpx  # noqa: E402

from probes import http as probe  # noqa: E402
from probes.config import HttpTarget  # noqa: E402
from probes.http_checks import HEADERS  # noqa: E402
from probes.http_pool import PER_ORIGIN, _Pools, _Timeline  # noqa: E402
from probes.http_wire import Headers, _framing, parse_head  # noqa: E402
from probes.thresholds import Thresholds  # noqa: E402

BUDGET_MS = 0.3
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
    b'Date: Wed, 02 Dec 2026 12:00:00 GMT\r\nServer: bench\r\n\r\n{"ok": true}'
)

# The server: keep-alive, one fixed answer per request head; it stops with its stdin.
SERVER = f"""
import asyncio, os, sys
ANSWER = {ANSWER!r}
async def serve(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main(ports):
    servers = [await asyncio.start_server(serve, "127.0.0.1", 0, backlog=512) for _ in range(ports)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    os._exit(0)  # no teardown of the open connections (asyncio would log each one)
asyncio.run(main(int(sys.argv[1])))
"""


class HttpxPools:
    """Today's transport before http_wire: one httpx.AsyncHTTPTransport per origin."""

    def __init__(self) -> None:
        self.pools: dict[Any, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self.pools.get(origin)
        if pool is None:
            pool = self.pools[origin] = httpx.AsyncHTTPTransport(
                trust_env=False,
                limits=httpx.Limits(
                    max_connections=PER_ORIGIN, max_keepalive_connections=PER_ORIGIN
                ),
            )
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()


def cpu_ms_per(count: int, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(CPU ms per run, of which in the kernel): user + system time of this process."""

    async def timed() -> tuple[float, float]:
        await run()  # warm: connections open, imports done
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        for _ in range(count):
            await run()
        total, after = time.process_time() - start, resource.getrusage(resource.RUSAGE_SELF)
        return total * 1000 / count, (after.ru_stime - before.ru_stime) * 1000 / count

    return asyncio.run(timed())


def transport_only(transport_of: Callable[[], Any], url: str) -> Callable[[], Awaitable[None]]:
    """Build the request as probes/http.py does, send it, read the body, close."""
    state: dict[str, Any] = {}

    async def one() -> None:
        transport = state.get("t") or state.setdefault("t", transport_of())
        timeline = _Timeline()
        request = httpx.Request(
            "GET",
            url,
            headers=HEADERS,
            extensions={"timeout": httpx.Timeout(5.0).as_dict(), "trace": timeline},
        )
        response = await transport.handle_async_request(request)
        body = b""
        async for chunk in response.stream:
            body += chunk
        await response.aclose()
        assert response.status_code == 200 and body == b'{"ok": true}', (response.status_code, body)

    return one


def transport_light(url: str) -> Callable[[], Awaitable[None]]:
    """The same through `_Pools.request`: no httpx.Request (the proposed lighter interface)."""
    state: dict[str, Any] = {}

    async def one() -> None:
        transport = state.get("t") or state.setdefault("t", _Pools())
        response = await transport.request("GET", url, HEADERS, _Timeline())
        body = b""
        async for chunk in response.stream:
            body += chunk
        await response.aclose()
        assert response.status_code == 200 and body == b'{"ok": true}', (response.status_code, body)

    return one


def whole_probe(transport_of: Callable[[], Any], url: str) -> Callable[[], Awaitable[None]]:
    """probes/http.py's request and grading, through the given transport."""
    state: dict[str, Any] = {}
    target, thresholds = HttpTarget("bench", url, json_field="ok"), Thresholds()

    async def one() -> None:
        transport = state.get("t") or state.setdefault("t", transport_of())
        result = await probe._request(target, thresholds, transport, 5.0)  # noqa: SLF001
        assert result.status.name == "OK", result.summary

    return one


def round_of(transport_of: Callable[[], Any], urls: list[str]) -> Callable[[], Awaitable[None]]:
    """Every target at once, as one refresh of the cockpit: per origin pools under load."""
    state: dict[str, Any] = {}
    targets, thresholds = [HttpTarget(f"t{i}", u) for i, u in enumerate(urls)], Thresholds()

    async def one() -> None:
        transport = state.get("t") or state.setdefault("t", transport_of())
        results = await asyncio.gather(
            *(probe._request(t, thresholds, transport, 5.0) for t in targets)  # noqa: SLF001
        )
        bad = [r.summary for r in results if r.status.name != "OK"]
        assert not bad, bad[:3]

    return one


def request_only(url: str) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        httpx.Request(
            "GET",
            url,
            headers=HEADERS,
            extensions={"timeout": httpx.Timeout(5.0).as_dict(), "trace": _Timeline()},
        )

    return one


def parse_h11() -> Callable[[], Awaitable[None]]:
    request = h11.Request(method="GET", target="/health", headers=[("Host", "127.0.0.1")])

    async def one() -> None:
        conn = h11.Connection(h11.CLIENT)
        conn.send(request)
        conn.send(h11.EndOfMessage())
        conn.receive_data(ANSWER)
        while type(conn.next_event()) is not h11.EndOfMessage:
            pass

    return one


def parse_minimal() -> Callable[[], Awaitable[None]]:
    head, _, body = ANSWER.partition(b"\r\n\r\n")

    async def one() -> None:
        version, status, _, fields = parse_head(head + b"\r\n\r\n")
        _framing("GET", status, version, Headers(fields))

    return one


def figure(
    name: str,
    count: int,
    repeats: int,
    run: Callable[[], Callable[[], Awaitable[None]]],
    per: int = 1,
    budget: float | None = BUDGET_MS,
) -> float:
    runs = [cpu_ms_per(count, run()) for _ in range(repeats)]
    values = [total / per for total, _ in runs]
    best, median = min(values), statistics.median(values)
    kernel = statistics.median(system / per for _, system in runs)
    verdict = "" if budget is None else ("  within" if median <= budget else "  OVER")
    limit = "" if budget is None else f"budget {budget:.3f}"
    print(
        f"{name:<50} best {best:6.3f}  median {median:6.3f} (kernel {kernel:5.3f}) ms CPU"
        f"  {limit}{verdict}",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=2000, help="probes per figure")
    parser.add_argument("-r", "--repeats", type=int, default=5)
    parser.add_argument("--ports", type=int, default=30, help="origins for the round figure")
    parser.add_argument("--paths", type=int, default=10, help="paths per origin in the round")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.ports)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ports = server.stdout.readline().split()
        url = f"http://127.0.0.1:{ports[0]}/health"
        urls = [f"http://127.0.0.1:{p}/path{i}" for p in ports for i in range(args.paths)]
        n, r = args.count, args.repeats
        print(
            f"CPU ms per probe, kept-alive loopback, {n} probes x {r} repeats (child-process server)"
        )
        figure("httpx.Request + timeout dict only", n, r, lambda: request_only(url), budget=None)
        figure("parse one answer: h11 (whole exchange state)", n, r, parse_h11, budget=None)
        figure("parse one answer: http_wire.parse_head + framing", n, r, parse_minimal, budget=None)
        figure(
            "transport only: httpx.AsyncHTTPTransport",
            n,
            r,
            lambda: transport_only(HttpxPools, url),
        )
        figure("transport only: http_wire (_Pools)", n, r, lambda: transport_only(_Pools, url))
        figure(
            "transport only: http_wire, _Pools.request (light)", n, r, lambda: transport_light(url)
        )
        figure(
            "whole probe (probes.http): httpx transport", n, r, lambda: whole_probe(HttpxPools, url)
        )
        figure("whole probe (probes.http): http_wire", n, r, lambda: whole_probe(_Pools, url))
        figure(
            "fresh connection each time: http_wire",
            max(n // 4, 50),
            r,
            lambda: transport_only(lambda: _Pools(fresh=True), url),
            budget=None,
        )
        rounds = max(n // len(urls), 3)
        figure(
            f"round of {len(urls)} at once ({len(ports)} origins): httpx",
            rounds,
            r,
            lambda: round_of(HttpxPools, urls),
            per=len(urls),
        )
        figure(
            f"round of {len(urls)} at once ({len(ports)} origins): http_wire",
            rounds,
            r,
            lambda: round_of(_Pools, urls),
            per=len(urls),
        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
