"""What the browser tests share: the dashboard server as a task they can stop and restart."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from altseason.dashboard import serve_dashboard
from foundation.config import Settings


class DashboardServer:
    """``serve_dashboard`` as a task, stoppable and restartable on the same port."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(serve_dashboard(self.settings, "127.0.0.1", self.port))
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # until it accepts connections
            if self.task.done():
                self.task.result()  # raises why it stopped
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                assert asyncio.get_running_loop().time() < deadline, "dashboard did not start"
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
            self.task = None
