"""A TCP proxy on 127.0.0.1 that cuts each connection after a chosen number of client bytes.

Used to break tus uploads at random offsets, the way a phone on a train does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class CuttingProxy:
    def __init__(self, target_port: int, cut_after: Callable[[], int | None]) -> None:
        self.target_port = target_port
        self.cut_after = cut_after  # bytes from the client before the cut; None: never cut
        self.cuts = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.server = server
        started.set()
        self.loop.run_forever()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        budget = self.cut_after()

        async def client_to_server() -> None:
            nonlocal budget
            while data := await client_reader.read(65536):
                if budget is not None:
                    if len(data) >= budget:
                        upstream_writer.write(data[:budget])
                        await upstream_writer.drain()
                        self.cuts += 1
                        raise ConnectionResetError("cut by proxy")
                    budget -= len(data)
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def server_to_client() -> None:
            while data := await upstream_reader.read(65536):
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
