"""What does one hop to the meter's DB threads cost? A do-nothing job, awaited
from uvloop (as uvicorn runs), through `loop.run_in_executor` on a
ThreadPoolExecutor (the pool's old design) and through `usage.dbpool`'s pool,
in alternating rounds. Every metered call makes two hops (reserve, settle).

Run by hand (never a test):

    .venv/bin/python bench/db_hop.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django

django.setup()

import uvloop  # noqa: E402

from usage.dbpool import _Pool  # noqa: E402

HOPS = 5000
ROUNDS = 5


def nothing() -> int:
    return 1


async def timed(hop) -> tuple[float, float]:
    """(median wall µs, CPU µs per hop) of this process."""
    walls = []
    cpu = time.process_time()
    for _ in range(HOPS):
        start = time.perf_counter()
        await hop()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls) * 1e6, (time.process_time() - cpu) / HOPS * 1e6


async def main() -> None:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench")
    pool = _Pool(8)

    async def through_pool() -> int:
        future = loop.create_future()
        pool.submit((nothing, loop, future))
        return await future

    sides = {
        "run_in_executor": lambda: loop.run_in_executor(executor, nothing),
        "usage.dbpool": through_pool,
    }
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(ROUNDS):
        for name, hop in sides.items():
            figures[name].append(await timed(hop))
    for name, runs in figures.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:16} wall p50 {wall:6.1f} µs   CPU {cpu:6.1f} µs per hop")
    print(f"(medians of {ROUNDS} alternating rounds of {HOPS} hops; load {os.getloadavg()[0]:.2f})")
    pool.stop()
    executor.shutdown()


if __name__ == "__main__":
    uvloop.run(main())
