"""The meter's part of the web process's life (registered with config.lifespan).

Start-up: new calls accepted; the journal replayed in the background (settles
a killed or cut-off process left on this host), so a database that is still
down doesn't hold the server up.

Shutdown: new calls get 503 service_unavailable; calls still settling in the
background (a client that went away doesn't stop its call) get up to
TOLLGATE_SHUTDOWN_DRAIN_SECONDS. Whatever outlives that bound is recovered by
the stale-reservation task: nothing is lost."""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


async def on_startup() -> None:
    from usage import journal, metering
    from usage.dbpool import run_db

    metering.start_accepting()
    try:
        outcome = await run_db(journal.replay)
    except Exception:
        logger.warning("start-up replay of the meter journal failed", exc_info=True)
        return
    if any(outcome.values()):
        logger.info("start-up replay of the meter journal: %s", outcome)


async def on_shutdown() -> None:
    from usage import metering

    left = await metering.shut_down(settings.TOLLGATE_SHUTDOWN_DRAIN_SECONDS)
    logger.info("meter drained (%d calls left to the recovery task)", left)


def register() -> None:
    from config import lifespan

    if on_startup not in lifespan.startup_hooks:
        lifespan.startup_hooks.append(on_startup)
        lifespan.shutdown_hooks.append(on_shutdown)
