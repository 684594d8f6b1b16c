"""What does a metered call leave to the garbage collector, and what do its pauses cost?

    .venv/bin/python bench/gc_pauses.py
    .venv/bin/python bench/gc_pauses.py --calls 2000 --rate 100 --seconds 10

Serves Tollgate in one uvicorn process (production settings, the fake upstream,
moderation on: as bench/meter_overhead.py) with `gc.callbacks` timing every
collection; warms it, then sends POST /api/v1/summaries at c=1 and at a fixed
rate (open loop) and prints, per phase: the collections of each generation and
their pauses (median, max, per call), the objects they freed per call (what
calls left in reference cycles: reference counting frees everything else as a
call ends) and the calls' p50/p99. Pauses are the collecting thread's CPU
time, not wall time, so other work on a busy machine doesn't inflate them.

Run by hand, never a test; PostgreSQL and Redis as for meter_overhead.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter_overhead as mo  # the shared client, servers and database set-up

# --- The server side: uvicorn in this process, every collection timed --------------


def serve_instrumented(port: int, stats_file: str) -> None:
    """SIGUSR1 starts a new record; SIGUSR2 writes it to `stats_file` (JSON)."""
    import uvicorn

    record: list[tuple[int, float, int]] = []  # (generation, CPU ms, objects freed)
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            pause = (time.thread_time() - started[0]) * 1000
            record.append((info["generation"], pause, info["collected"]))

    def reset(*_args) -> None:
        record.clear()

    def write(*_args) -> None:
        partial = Path(f"{stats_file}.partial")
        partial.write_text(json.dumps(record))
        partial.replace(stats_file)  # whole or absent for the driver, never half-written

    gc.callbacks.append(timed)
    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, write)
    uvicorn.run(
        "config.asgi:application",  # its import freezes the start-up heap, as in production
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


# --- The driver ----------------------------------------------------------------------


def read_record(pid: int, stats_file: Path) -> list[tuple[int, float, int]]:
    stats_file.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not stats_file.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not write its collections")
        time.sleep(0.05)
    return [tuple(row) for row in json.loads(stats_file.read_text())]


def report(phase: str, run: mo.Run, record: list[tuple[int, float, int]]) -> None:
    calls = max(len(run.latencies), 1)
    print(f"\n{phase}:")
    print(mo.line("(b) metered", run))
    if not record:
        print("  no collection ran")
    for generation in sorted({g for g, _pause, _freed in record}):
        pauses = [pause for g, pause, _freed in record if g == generation]
        freed = sum(freed for g, _pause, freed in record if g == generation)
        print(
            f"  generation {generation}: {len(pauses)} collections, pause median "
            f"{statistics.median(pauses):.2f} ms, max {max(pauses):.2f} ms, "
            f"{sum(pauses) / calls * 1000:.0f} µs per call; freed {freed / calls:.1f} "
            "objects per call"
        )


async def drive(args, target: mo.Target, pid: int, stats_file: Path) -> None:
    for _ in range(3):  # caches, connections, lazy imports
        await mo.closed_loop(target, 10, 300)
    phases = [
        (f"c=1, {args.calls} calls", lambda: mo.closed_loop(target, 1, args.calls)),
        (
            f"fixed rate {args.rate:g} req/s for {args.seconds:g} s (open loop)",
            lambda: mo.open_loop(target, args.rate, args.seconds),
        ),
    ]
    for phase, run_phase in phases:
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(0.2)
        run = await run_phase()
        report(phase, run, read_record(pid, stats_file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mo.add_service_arguments(parser)
    parser.add_argument("--calls", type=int, default=1500, help="at c=1")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve-instrumented", nargs=2, metavar=("PORT", "STATS_FILE"))
    args = parser.parse_args()
    if args.serve_instrumented:
        port, stats_file = args.serve_instrumented
        return serve_instrumented(int(port), stats_file)

    (mo.ROOT / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)
    upstream_port, web_port = mo.free_port(), mo.free_port()
    env = mo.bench_env(args, upstream_port)
    stats_file = mo.LOG_DIR / "gc_pauses.json"
    procs = [
        mo.start(
            [mo.PY, "-m", "standins.fake_openai", "--port", str(upstream_port)], env, "upstream"
        )
    ]
    try:
        setup = types.SimpleNamespace(
            database_url=args.database_url, workspaces=1, no_moderation=False
        )
        (secret,) = mo.prepare_database(setup, env)
        server = [mo.PY, __file__, "--serve-instrumented", str(web_port), str(stats_file)]
        procs.append(mo.start(server, env, "web"))
        mo.wait_http(f"http://127.0.0.1:{web_port}/healthz")
        body = json.dumps({"text": mo.TEXT, "length": "short", "format": "paragraph"}).encode()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        request = mo.build_request("127.0.0.1", web_port, "/api/v1/summaries", body, headers)
        target = mo.Target("metered", "127.0.0.1", web_port, [request])
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"One uvicorn process, production settings, moderation on; load average {load}")
        mo.arun(drive(args, target, procs[1].pid, stats_file))
    finally:
        for proc in reversed(procs):
            mo.stop(proc)


if __name__ == "__main__":
    main()
