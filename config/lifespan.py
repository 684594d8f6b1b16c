"""The web process's start and graceful stop (ASGI lifespan, run by uvicorn).

config knows no app (the layers): apps register their hooks here from their
`AppConfig.ready()` — the meter registers its start-up journal replay and its
drain (usage/lifecycle.py).

SIGTERM: uvicorn stops accepting connections, lets requests in flight finish
(`--timeout-graceful-shutdown`, the run command passes it) and then sends
`lifespan.shutdown`, which runs the shutdown hooks (the meter: refuse new
calls, drain the ones still settling, within a bound)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[object]]
startup_hooks: list[Hook] = []  # run in the background: never hold the server up
shutdown_hooks: list[Hook] = []  # awaited, in order, before the process exits


async def lifespan(receive, send) -> None:
    background: set[asyncio.Task] = set()
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            for hook in startup_hooks:
                task = asyncio.ensure_future(hook())
                background.add(task)
                task.add_done_callback(background.discard)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for hook in shutdown_hooks:
                try:
                    await hook()
                except Exception:
                    logger.exception("shutdown hook %r failed", hook)
            await send({"type": "lifespan.shutdown.complete"})
            return
