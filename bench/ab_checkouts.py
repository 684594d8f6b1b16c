"""Is commit B faster than commit A? Both served at once, bursts alternating:

    .venv/bin/python bench/ab_checkouts.py 576afe4            # A = that commit, B = the work tree
    .venv/bin/python bench/ab_checkouts.py 576afe4 HEAD --pairs 16

On these shared 2-core machines the speed of the whole box drifts by 1.5x
within minutes, so two whole benchmark runs a minute apart can disagree more
than the change being measured. Here both servers stay up (each started by its
own checkout's `bench/meter_overhead.py --serve`, with its own database and
Redis database, 2 uvicorn workers) and the load alternates between them in
short bursts (150 calls at c=1, then 1,000 at c=50), A first in one pair and B
first in the next. Prints, per pair and as medians: c=1 p50/p99, c=50 req/s,
web and PostgreSQL CPU per call; and the median of the pairs' B/A ratios,
which is the figure to quote.

A commit is checked out into a git worktree under var/ab/ (the .venv and the
tiktoken cache are shared). Run by hand, never a test; PostgreSQL and Redis as
for meter_overhead.py (the two databases are dropped and created afresh, so
both start with empty tables).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter_overhead as mo  # the shared client and CPU accounting

ROOT = mo.ROOT
WORKTREES = ROOT / "var" / "ab"
# meter_overhead.py --serve's line: the web port, the API key, the web server's pid.
SERVING = re.compile(r"127\.0\.0\.1:(\d+)/api.* keys (tg_\S+?);.* pids \[\d+, (\d+)\]")


def checkout(rev: str) -> Path:
    """A worktree of `rev` (the work tree itself for "WORKTREE")."""
    if rev == "WORKTREE":
        return ROOT
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    path = WORKTREES / sha
    if not path.exists():
        WORKTREES.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "worktree", "add", "-f", "--detach", str(path), sha],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        (path / ".venv").symlink_to(ROOT / ".venv")
        (path / "var").mkdir(exist_ok=True)
        (path / "var" / "tiktoken-cache").symlink_to(ROOT / "var" / "tiktoken-cache")
    return path


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Side:
    """One checkout's servers, kept up while the bursts run."""

    def __init__(self, name: str, path: Path, database_url: str, redis_url: str, ports: str):
        self.name, self.path, self.database_url = name, path, database_url
        self.database = database_url.rsplit("/", 1)[1]
        self.log = ROOT / "var" / "bench" / f"ab-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        fresh_database(database_url)
        command = [
            str(path / ".venv" / "bin" / "python"),
            "bench/meter_overhead.py",
            "--database-url",
            database_url,
            "--redis-url",
            redis_url,
            "--ports",
            ports,
            "--workers",
            "2",
            "--serve",
            "86400",
        ]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                command, cwd=path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def ready(self, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.log.read_text()
            found = SERVING.search(text)
            if found:
                port, key, web = int(found[1]), found[2], int(found[3])
                body = json.dumps({"text": mo.TEXT, "length": "short", "format": "paragraph"})
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                path = "/api/v1/summaries"
                raw = mo.build_request("127.0.0.1", port, path, body.encode(), headers)
                self.target, self.web = mo.Target(self.name, "127.0.0.1", port, [raw]), web
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name}'s servers stopped; see {self.log}")
            time.sleep(1)
        raise SystemExit(f"{self.name}'s servers did not start; see {self.log}")

    def stop(self) -> None:
        mo.stop(self.proc)

    async def burst(self) -> dict[str, float]:
        c1 = await mo.closed_loop(self.target, 1, 150)
        before = mo.cpu_seconds({"web": self.web}, self.database)
        c50 = await mo.closed_loop(self.target, 50, 1000)
        after = mo.cpu_seconds({"web": self.web}, self.database)
        calls = max(1, len(c50.latencies))
        errors = sum(c1.errors.values()) + sum(c50.errors.values())
        return {
            "c1 p50": c1.pct(0.5),
            "c1 p99": c1.pct(0.99),
            "c50 req/s": c50.rps,
            "web CPU": 1000 * (after["web"] - before["web"]) / calls,
            "PG CPU": 1000 * (after["postgres"] - before["postgres"]) / calls,
            "errors": errors,
        }


async def alternate(a: Side, b: Side, pairs: int) -> dict[str, list[dict]]:
    for side in (a, b):  # warm caches, connections, prepared statements
        for _ in range(3):
            await mo.closed_loop(side.target, 20, 200)
    results: dict[str, list[dict]] = {"A": [], "B": []}
    for i in range(pairs):
        order = ((a, "A"), (b, "B")) if i % 2 == 0 else ((b, "B"), (a, "A"))
        for side, label in order:
            results[label].append(await side.burst())
        ra, rb = results["A"][-1], results["B"][-1]
        print(
            f"pair {i + 1:2d}: "
            + " | ".join(
                f"{label} c1 {r['c1 p50']:5.2f} ms, {r['c50 req/s']:4.0f} req/s, "
                f"web {r['web CPU']:.2f} + PG {r['PG CPU']:.2f} ms"
                for label, r in (("A", ra), ("B", rb))
            )
            + (f"  errors {ra['errors'] + rb['errors']}" if ra["errors"] + rb["errors"] else ""),
            flush=True,
        )
    return results


def report(results: dict[str, list[dict]]) -> None:
    print(f"\n{'':12s} {'A median':>10s} {'B median':>10s} {'B/A (median of pairs)':>24s}")
    for what in ("c1 p50", "c1 p99", "c50 req/s", "web CPU", "PG CPU"):
        a = [r[what] for r in results["A"]]
        b = [r[what] for r in results["B"]]
        ratios = [y / x for x, y in zip(a, b, strict=True) if x]
        print(
            f"{what:12s} {statistics.median(a):10.2f} {statistics.median(b):10.2f} "
            f"{statistics.median(ratios):24.3f}"
        )
    errors = sum(r["errors"] for side in results.values() for r in side)
    print(f"errors: {errors}; (ms for latencies and CPU per call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the baseline: a commit, branch or tag")
    parser.add_argument("b", nargs="?", default="WORKTREE", help="default: the work tree")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="uses DBs 12 and 13")
    args = parser.parse_args()
    sides = [
        Side(label, checkout(rev), f"{args.postgres}/tollgate_ab_{label.lower()}", redis, ports)
        for label, rev, redis, ports in (
            ("A", args.a, f"{args.redis}/12", "9500-9519"),
            ("B", args.b, f"{args.redis}/13", "9520-9539"),
        )
    ]
    try:
        for side in sides:
            side.ready()
        print(f"A = {args.a} ({sides[0].path}), B = {args.b} ({sides[1].path})")
        print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        report(mo.arun(alternate(*sides, args.pairs)))
        print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for side in sides:
            side.stop()


if __name__ == "__main__":
    main()
