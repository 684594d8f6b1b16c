"""The web process's start and graceful stop (ASGI lifespan, run by uvicorn).

Start-up: replay the meter's journal (settles a killed or cut-off process left
on this host) in the background, so a database that is still down doesn't
hold the server up.

SIGTERM: uvicorn stops accepting connections, lets requests in flight finish
(`--timeout-graceful-shutdown`, the run command passes it) and then sends
`lifespan.shutdown`; here the meter refuses new calls (503 service_unavailable)
and waits up to TOLLGATE_SHUTDOWN_DRAIN_SECONDS for calls still settling in the
background (a client that went away doesn't stop its call). Whatever outlives
that bound is recovered by the stale-reservation task: nothing is lost."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


async def _replay_journal() -> None:
    from usage import journal
    from usage.dbpool import run_db

    try:
        outcome = await run_db(journal.replay)
    except Exception:
        logger.warning("start-up replay of the meter journal failed", exc_info=True)
        return
    if any(outcome.values()):
        logger.info("start-up replay of the meter journal: %s", outcome)


async def lifespan(receive, send) -> None:
    from usage import metering

    background: set[asyncio.Task] = set()
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            metering.start_accepting()
            task = asyncio.ensure_future(_replay_journal())
            background.add(task)
            task.add_done_callback(background.discard)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            left = await metering.shut_down(settings.TOLLGATE_SHUTDOWN_DRAIN_SECONDS)
            logger.info("meter drained (%d calls left to the recovery task)", left)
            await send({"type": "lifespan.shutdown.complete"})
            return
