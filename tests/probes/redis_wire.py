"""A recording Redis proxy on loopback: every command a client sends, with all its arguments.

Redis itself cannot tell us this: MONITOR leaves out administrative commands (CONFIG, CLIENT,
...), exactly the ones a read-only probe must not misuse, and the redis-server the tests run
(6.2) counts CONFIG GET and CONFIG SET under one `cmdstat_config`. So the probe is pointed at
this proxy, which parses each RESP request before forwarding it.
"""

from __future__ import annotations

import asyncio
import contextlib

from tui.sandbox.base import LOOPBACK


def _parse_one(data: bytes) -> tuple[list[str], int] | None:
    """The first complete request in data and the bytes it took; None while it is partial."""
    end = data.find(b"\r\n")
    if end < 0:
        return None
    if not data.startswith(b"*"):  # an inline command: words on one line
        return data[:end].decode(errors="replace").split(), end + 2
    count, position, args = int(data[1:end]), end + 2, []
    for _ in range(count):
        end = data.find(b"\r\n", position)
        if end < 0:
            return None
        if data[position : position + 1] != b"$":
            raise ValueError(f"not a RESP bulk string at byte {position}: {data[position:position + 20]!r}")
        size, start = int(data[position + 1 : end]), end + 2
        if len(data) < start + size + 2:
            return None
        args.append(data[start : start + size].decode(errors="replace"))
        position = start + size + 2
    return args, position


def take_commands(buffer: bytearray) -> list[list[str]]:
    """The complete requests at the front of buffer, removed from it; a partial one stays."""
    commands = []
    while buffer:
        parsed = _parse_one(bytes(buffer))
        if parsed is None:
            break
        args, used = parsed
        del buffer[:used]
        commands.append(args)
    return commands


class RecordingProxy:
    """Forwards loopback connections to a Redis server and records every request on the way."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.commands: list[list[str]] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, db: int = 0) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://{LOOPBACK}:{port}/{db}"

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        requests = asyncio.create_task(self._requests(client_reader, upstream_writer))
        replies = asyncio.create_task(self._copy(upstream_reader, client_writer))
        self._tasks |= {requests, replies}
        try:
            await asyncio.wait({requests, replies}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (requests, replies):
                task.cancel()
            for writer in (client_writer, upstream_writer):
                writer.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()
            self._tasks -= {requests, replies}

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        while chunk := await reader.read(65536):
            buffer += chunk
            # Recorded before the server sees them: a reply the client waits for implies the record.
            self.commands.extend(take_commands(buffer))
            writer.write(chunk)
            await writer.drain()

    @staticmethod
    async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
