"""The sandbox's name server: the `sandbox.test` zone on 127.0.0.1 (UDP and TCP, one port).

It runs inside the sandbox process (like the HTTP services), answers authoritatively for its
zone only (REFUSED elsewhere: it never recurses, so it never sends a packet anywhere), and owns:
  dns-failure   SERVFAIL for every question during the first SERVFAIL_S seconds, then every
                answer delayed SLOW_S (a resolver that came back overloaded); heal: prompt again
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from pathlib import Path
from typing import Any

from tui.sandbox.base import LOOPBACK, Component, SandboxError, free_port

ZONE = "sandbox.test"
# (name, type) -> (TTL, values in zone-file syntax)
RECORDS: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {
    (ZONE, "NS"): (3600, ("ns1.sandbox.test.",)),
    (ZONE, "MX"): (3600, ("10 mail.sandbox.test.",)),
    (ZONE, "TXT"): (300, ('"v=spf1 -all"',)),
    ("ns1.sandbox.test", "A"): (3600, ("127.0.0.1",)),
    ("api.sandbox.test", "A"): (300, ("127.0.0.1",)),
    ("api.sandbox.test", "AAAA"): (300, ("::1",)),
    ("payments.sandbox.test", "A"): (300, ("127.0.0.1",)),
    ("mail.sandbox.test", "A"): (300, ("127.0.0.1",)),
    ("www.sandbox.test", "CNAME"): (300, ("api.sandbox.test.",)),
}
SERVFAIL_S = 4.0  # long enough for a refresh or two to see it, short for the tests
SLOW_S = 1.5  # over the sandbox's 1 s fail line, under the probe's 2 s timeout
MAX_PENDING = 256  # delayed answers in flight; past that, questions are dropped (bounded)


def answer(wire: bytes, mode: str = "ok") -> bytes | None:
    """The reply to one DNS message (None: not a DNS question, dropped as servers do)."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    if query.flags & dns.flags.QR or len(query.question) != 1:
        return None
    response = dns.message.make_response(query)
    if mode == "servfail":
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()
    question = query.question[0]
    name, kind = question.name.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(question.rdtype)
    if name != ZONE and not name.endswith(f".{ZONE}"):
        response.set_rcode(dns.rcode.REFUSED)  # not our zone, and we never recurse
        return response.to_wire()
    response.flags |= dns.flags.AA
    for _ in range(8):  # follow CNAMEs inside the zone, as an authoritative server does
        if kind == "CNAME" or (name, "CNAME") not in RECORDS:
            break
        ttl, (alias,) = RECORDS[(name, "CNAME")]
        response.answer.append(dns.rrset.from_text(f"{name}.", ttl, "IN", "CNAME", alias))
        name = alias.rstrip(".")
    if (name, kind) in RECORDS:
        ttl, values = RECORDS[(name, kind)]
        response.answer.append(dns.rrset.from_text(f"{name}.", ttl, "IN", kind, *values))
    elif not any(n == name for n, _ in RECORDS) and name != ZONE:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsComponent) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.reply(data)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DnsComponent(Component):
    """An authoritative name server for `sandbox.test` on 127.0.0.1, over UDP and TCP."""

    name = "dns"
    scenarios = ("dns-failure",)

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = 0
        self.failing_since: float | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    def mode(self) -> str:
        if self.failing_since is None:
            return "ok"
        return "servfail" if time.monotonic() - self.failing_since < SERVFAIL_S else "slow"

    def spawn(self, work: Any) -> None:
        if len(self.tasks) >= MAX_PENDING:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reply(self, data: bytes) -> bytes | None:
        mode = self.mode()
        if mode == "slow":
            await asyncio.sleep(SLOW_S)
        return answer(data, mode)

    async def start(self) -> None:
        import dns.message  # noqa: F401 - loaded now, not while the first question waits

        loop = asyncio.get_running_loop()
        for _ in range(10):  # the same port number for UDP and TCP, as name servers use
            port = free_port()
            try:
                self.tcp = await asyncio.start_server(self._serve_tcp, LOOPBACK, port)
                self.udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(LOOPBACK, port))
            except OSError:
                await self.stop()
                continue
            self.port = port
            return
        raise SandboxError("dns: no free port for UDP and TCP on 127.0.0.1")

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            async with asyncio.timeout(30):
                while head := await reader.readexactly(2):
                    reply = await self.reply(await reader.readexactly(struct.unpack("!H", head)[0]))
                    if reply is None:
                        break
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, asyncio.CancelledError):
            pass  # a client that hung up, or a TCP probe that only connects
        finally:
            if task is not None:
                self.tasks.discard(task)
            writer.close()

    @property
    def server(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "dns": [{
                "name": "api-dns", "host": "api.sandbox.test", "type": "A", "server": self.server,
                "expect": ["127.0.0.1"], "latency_warn_ms": 300.0, "latency_fail_ms": 1000.0,
            }],
            # The name server's TCP side: up while it answers SERVFAIL (the server runs, its
            # answers are the problem), refused when it is down.
            "tcp": [{"name": "dns-tcp", "host": LOOPBACK, "port": self.port}],
        }

    async def inject(self, scenario: str) -> str:
        if scenario == "dns-failure":
            self.failing_since = time.monotonic()
            return f"name server {self.server} answers SERVFAIL for {SERVFAIL_S:g} s, then after {SLOW_S:g} s each"
        return await super().inject(scenario)

    async def heal(self, scenario: str) -> str:
        if scenario == "dns-failure":
            self.failing_since = None
            return f"name server {self.server} answers promptly again"
        return await super().heal(scenario)

    async def stop(self) -> None:
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self.tasks), timeout=5)
