"""What does the meter cost? Same payload, same run:

  (a) straight to the local fake upstream  (POST /v1/chat/completions)
  (b) through Tollgate                     (POST /api/v1/summaries, metered:
      API key, rate limits in Redis, reservation in PostgreSQL, moderation,
      upstream call, usage event, settle)

(a) replays the exact upstream request (b) makes (captured from the fake
upstream after a warm-up call), so the difference is the meter's work plus the
moderation round trip. Both are driven by the same minimal keep-alive HTTP/1.1
client, so the client's own cost is the same on both sides.

Run by hand (never a test), with PostgreSQL and Redis running:

    .venv/bin/python bench/meter_overhead.py
    .venv/bin/python bench/meter_overhead.py --workers 2 --requests 3000 --no-moderation

Prints p50 / p99 latency and req/s at concurrency 1, 50 and 200; the overhead
(b - a) of the medians and p99s; an open-loop run at a fixed rate (100 req/s)
for the overhead target; and an in-flight test with the upstream answering in
2 s (how many requests are in flight at once without errors).

Settings are production's (DEBUG off, real PostgreSQL + Redis, JSON logs at
WARNING, no access log), with quotas and rate limits raised out of the way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT))

UPSTREAM_KEY = "sk-bench-upstream-key"
KEEP_ALIVE_SECONDS = 4.0  # below uvicorn's default --timeout-keep-alive of 5 s
TEXT = (
    "Tollgate sells finished AI features to end customers and meters every token "
    "through the operator's single upstream organization key. Customers never see "
    "that key. They sign up, pick a tier, and use the features in the browser or "
    "through a REST API with keys that Tollgate issues. Every request is attributed "
    "to a person, a workspace and, for API calls, one of those keys. Quotas and caps "
    "are reserved in PostgreSQL before the upstream is called, in one transaction, so "
    "concurrent requests can never overspend. Rate limits live in Redis and are "
    "shared by every web process. When a workspace runs out of included tokens, an "
    "owner is asked, explicitly, before anything more is charged. Streamed calls are "
    "recorded even when the client disconnects, and a failed upstream call costs "
    "nothing. This benchmark measures what all of that costs per request."
)


# --- A minimal keep-alive HTTP/1.1 client ---------------------------------------------------


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            body = await self.reader.readexactly(length or 0)
        self.last_used = time.monotonic()
        if close:
            self.close()
        return status, body

    def stale(self) -> bool:
        """Idle past the server's keep-alive (uvicorn closes after 5 s): reusing it
        would race the server's close, as real clients know not to."""
        idle_for = time.monotonic() - self.last_used
        return self.reader is None or self.reader.at_eof() or idle_for > KEEP_ALIVE_SECONDS

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Target:
    """Where to send, and the request(s) to send, in turn (one per workspace)."""

    name: str
    host: str
    port: int
    raws: list[bytes]
    _turn: int = 0

    @property
    def raw(self) -> bytes:
        self._turn += 1
        return self.raws[self._turn % len(self.raws)]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    started_at: float = 0.0  # time.monotonic() at the start (bursts)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def _one(conn: Connection, target: Target, run: Run, started: float) -> None:
    try:
        status, body = await conn.request(target.raw)
    except Exception as exc:  # a dropped connection is a result, not a crash
        conn.close()
        run.error(type(exc).__name__)
        return
    if status not in (200, 201):
        code = status
        with contextlib.suppress(Exception):
            code = json.loads(body)["error"]["code"]
        run.error(f"HTTP {status} {code}")
        return
    run.latencies.append(time.perf_counter() - started)


async def closed_loop(target: Target, concurrency: int, total: int) -> Run:
    """`concurrency` clients, each sending its next request when the last returns."""
    run = Run()
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        conn = Connection(target.host, target.port)
        while remaining > 0:
            remaining -= 1
            await _one(conn, target, run, time.perf_counter())
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - start
    return run


async def open_loop(target: Target, rate: float, seconds: float) -> Run:
    """Requests sent on a fixed schedule (latency counted from the scheduled time,
    so a slow server can't hide its queue)."""
    run = Run()
    idle: list[Connection] = []
    tasks = []

    async def fire(scheduled: float) -> None:
        while idle and idle[-1].stale():
            idle.pop().close()
        conn = idle.pop() if idle else Connection(target.host, target.port)
        await _one(conn, target, run, scheduled)
        if conn.writer is not None:
            idle.append(conn)

    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(scheduled)))
    await asyncio.gather(*tasks)
    run.elapsed = time.perf_counter() - start
    for conn in idle:
        conn.close()
    return run


async def burst(target: Target, count: int) -> Run:
    """`count` requests on `count` connections, all sent at once."""
    run = Run()
    conns = [Connection(target.host, target.port) for _ in range(count)]
    opened = await asyncio.gather(*(c.open() for c in conns), return_exceptions=True)
    failed = [o for o in opened if isinstance(o, Exception)]
    for exc in failed:
        run.error(f"connect {type(exc).__name__}")
    live = [c for c, o in zip(conns, opened, strict=True) if not isinstance(o, Exception)]
    run.started_at = time.monotonic()  # the machine's clock, as the fake upstream's
    start = time.perf_counter()
    await asyncio.gather(*(_one(c, target, run, start) for c in live))
    run.elapsed = time.perf_counter() - start
    for conn in live:
        conn.close()
    return run


# --- Servers ------------------------------------------------------------------------------


def arun(coro):
    """asyncio.run on uvloop (as uvicorn uses) when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return asyncio.run(coro, loop_factory=uvloop.new_event_loop)


_PORT_RANGE: list[int] = []  # --ports A-B: take free ports from this range only


def free_port() -> int:
    for port in list(_PORT_RANGE):
        _PORT_RANGE.remove(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def use_port_range(spec: str | None) -> None:
    if spec:
        low, _, high = spec.partition("-")
        _PORT_RANGE[:] = range(int(low), int(high or low) + 1)


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.2)


def control(upstream: str, path: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{upstream}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def bench_env(args, upstream_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=args.database_url,
        DATABASE_CONN_MAX_AGE="600",
        REDIS_URL=args.redis_url,
        LOG_LEVEL="WARNING",
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        OPENAI_TIMEOUT_SECONDS="30",
        TOLLGATE_DEFAULT_INCLUDED_TOKENS=str(10**13),
        TOLLGATE_DEFAULT_RPM=str(10**9),
        TOLLGATE_DEFAULT_TPM=str(10**13),
        PYTHONPATH=str(ROOT),
    )
    return env


def vacuum_hot_tables(database_url: str) -> None:
    """VACUUM the meter's hot rows. The project machines run PostgreSQL with
    autovacuum off (`SHOW autovacuum`), where the counter rows, updated twice a
    call, would carry ever longer chains of dead versions from round to round;
    production relies on autovacuum (tuned for these tables in usage's
    migration 0006). Run before each measurement so rounds start alike."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM usage_usagecounter, usage_reservation, usage_usagerollup")


def prepare_database(args, env: dict[str, str]) -> list[str]:
    """Create the bench database if needed, migrate, seed the workspaces (one
    owner and one API key each); returns the keys' secrets."""
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from decimal import Decimal

    from django.conf import settings
    from django.db import connections

    from accounts.models import Membership, User, Workspace
    from usage.models import LIFETIME_START, ModerationSettings, RateCard
    from usage.services import key_create

    secrets = []
    for n in range(args.workspaces):
        user, _ = User.objects.get_or_create(email=f"bench{n}@tollgate.local")
        workspace, _ = Workspace.objects.get_or_create(name=f"Bench {n}", created_by=user)
        membership, _ = Membership.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": "owner"}
        )
        secrets.append(key_create(membership=membership, name=f"bench {time.time():.0f}").secret)
    RateCard.objects.get_or_create(
        model=settings.OPENAI_DEFAULT_MODEL,
        effective_from=LIFETIME_START,
        defaults={
            "input_per_million": Decimal("0.15"),
            "cached_input_per_million": Decimal("0.075"),
            "output_per_million": Decimal("0.60"),
        },
    )
    screen = ModerationSettings.current()
    screen.enabled = not args.no_moderation
    screen.save()
    connections.close_all()
    return secrets


LOG_DIR = ROOT / "var" / "bench"


def start(args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
    """A server in its own session; its output goes to var/bench/<log_name>.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{log_name}.log", "w")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        args, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --- CPU accounting (Linux /proc): CPU time per request, whatever else runs ---------


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(roots: dict[str, int], database: str) -> dict[str, float]:
    """CPU seconds so far of each root process and its children, and of the
    PostgreSQL backends serving `database`."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile
                table[int(entry)] = _proc_stat(int(entry))
    totals = {}
    for name, root in roots.items():
        family = {root}
        for pid, (ppid, _cpu) in table.items():  # uvicorn workers are direct children
            if ppid in family:
                family.add(pid)
        totals[name] = sum(table[pid][1] for pid in family if pid in table)
    totals["postgres"] = sum(
        cpu for pid, (_p, cpu) in table.items() if f" {database} " in _cmdline(pid)
    )
    return totals


# --- Report --------------------------------------------------------------------------------


def line(label: str, run: Run) -> str:
    errors = sum(run.errors.values())
    detail = f"  errors {run.errors}" if errors else ""
    return (
        f"  {label:<34} n={len(run.latencies):>5}  p50 {run.pct(0.50):7.2f} ms  "
        f"p99 {run.pct(0.99):7.2f} ms  {run.rps:7.1f} req/s{detail}"
    )


def overhead(a: Run, b: Run) -> str:
    return (
        f"  {'overhead (b - a)':<34}          p50 {b.pct(0.5) - a.pct(0.5):+7.2f} ms  "
        f"p99 {b.pct(0.99) - a.pct(0.99):+7.2f} ms"
    )


def cpu_line(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    parts = [
        f"{name} {1000 * (after[name] - before[name]) / max(requests, 1):.2f}" for name in before
    ]
    return "  CPU ms per request: " + ", ".join(parts)


async def measure(args, direct: Target, metered: Target, upstream: str, roots=None) -> None:
    print(f"\nPayload: {len(TEXT)} characters of text, length=short, format=paragraph")
    print("(a) = straight to the fake upstream, (b) = metered POST /api/v1/summaries\n")
    for _ in range(3):  # warm both paths (connections, caches, JIT-less but lazy imports)
        await closed_loop(direct, 20, 200)
        await closed_loop(metered, 20, 200)
    for concurrency in args.concurrency:
        total = args.requests if concurrency > 1 else min(args.requests, 400)
        database = args.database_url.rsplit("/", 1)[1]
        cpu0 = cpu_seconds(roots, database)
        a = await closed_loop(direct, concurrency, total)
        cpu1 = cpu_seconds(roots, database)
        b = await closed_loop(metered, concurrency, total)
        cpu2 = cpu_seconds(roots, database)
        print(f"concurrency {concurrency}:")
        print(line("(a) direct", a))
        print(cpu_line(cpu0, cpu1, len(a.latencies)))
        print(line("(b) metered", b))
        print(cpu_line(cpu1, cpu2, len(b.latencies)))
        print(overhead(a, b))
    print(f"\nfixed rate {args.rate} req/s for {args.seconds} s (open loop):")
    a = await open_loop(direct, args.rate, args.seconds)
    b = await open_loop(metered, args.rate, args.seconds)
    print(line("(a) direct", a))
    print(line("(b) metered", b))
    print(overhead(a, b))
    print("  targets (issue 13): overhead p50 <= 5 ms, p99 <= 15 ms")

    peak = await closed_loop(metered, args.peak_concurrency, args.requests)
    print(f"\nmetered throughput at concurrency {args.peak_concurrency}:")
    print(line("(b) metered", peak))
    print("  target (issue 13): >= 250 metered req/s at c=50; web CPU <= 5 ms, PostgreSQL <= 2 ms")

    control(upstream, "/_control/config", {"latency_ms": args.inflight_latency_ms})
    for count in args.inflight:
        control(upstream, "/_control/reset", {})
        control(upstream, "/_control/config", {"latency_ms": args.inflight_latency_ms})
        run = await burst(metered, count)
        stats = control(upstream, "/_control/stats")
        print(
            f"\nin flight: {count} metered requests at once, upstream answering in "
            f"{args.inflight_latency_ms} ms:"
        )
        print(line("(b) metered", run))
        print(
            f"  succeeded {len(run.latencies)}/{count}; the upstream saw "
            f"{stats['peak_in_flight']} chat calls in flight at its peak; "
            f"all done in {run.elapsed:.2f} s"
        )
        if stats.get("first_chat_at") is not None:
            first, last = stats["first_chat_at"], stats["last_chat_at"]
            print(
                f"  the calls reached the upstream from +{first - run.started_at:.2f} s to "
                f"+{last - run.started_at:.2f} s after the burst was sent"
            )
    print("  target (issue 13): 1,000 in flight at the upstream, all done within 4 s, 0 errors")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average after: {load}; server logs: {LOG_DIR}/web.log, {LOG_DIR}/upstream.log")
    control(upstream, "/_control/config", {"latency_ms": 0})


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """The PostgreSQL database and Redis database a bench script runs against."""
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/tollgate_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_service_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--requests", type=int, default=3000, help="per concurrency level")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 50, 200]
    )
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--peak-concurrency", type=int, default=100)
    parser.add_argument("--inflight", type=lambda s: [int(x) for x in s.split(",")], default=[1000])
    parser.add_argument("--inflight-latency-ms", type=int, default=2000)
    parser.add_argument(
        "--workspaces",
        type=int,
        default=1,
        help="spread the metered requests over this many workspaces (one key each)",
    )
    parser.add_argument(
        "--serve",
        type=float,
        default=0,
        help="only start the servers and keep them up this many seconds (to profile "
        "with py-spy); prints the ports and the API key",
    )
    parser.add_argument(
        "--no-moderation",
        action="store_true",
        help="turn the moderation pre-screen off (operator setting)",
    )
    parser.add_argument("--ports", help="take the servers' ports from this range, e.g. 9300-9319")
    args = parser.parse_args()
    use_port_range(args.ports)

    (ROOT / "var" / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise's root
    upstream_port, web_port = free_port(), free_port()
    env = bench_env(args, upstream_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    procs = [
        start([PY, "-m", "standins.fake_openai", "--port", str(upstream_port)], env, "upstream")
    ]
    try:
        secrets = prepare_database(args, env)
        procs.append(
            start(
                [
                    PY,
                    "-m",
                    "uvicorn",
                    "config.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(web_port),
                    "--workers",
                    str(args.workers),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--backlog",
                    "4096",
                    "--lifespan",
                    "off",
                ],
                env,
                "web",
            )
        )
        wait_http(f"http://127.0.0.1:{web_port}/healthz")
        wait_http(f"{upstream}/_control/stats")
        summary = json.dumps({"text": TEXT, "length": "short", "format": "paragraph"}).encode()
        metered = Target(
            "metered",
            "127.0.0.1",
            web_port,
            [
                build_request(
                    "127.0.0.1",
                    web_port,
                    "/api/v1/summaries",
                    summary,
                    {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
                )
                for secret in secrets
            ],
        )
        status, body = arun(_probe(metered))
        if status not in (200, 201):
            raise SystemExit(f"The metered endpoint answered {status}: {body[:500]!r}")
        sent = control(upstream, "/_control/last_request")
        upstream_body = json.dumps(sent["body"]).encode()
        direct = Target(
            "direct",
            "127.0.0.1",
            upstream_port,
            [
                build_request(
                    "127.0.0.1",
                    upstream_port,
                    "/v1/chat/completions",
                    upstream_body,
                    {
                        "Authorization": f"Bearer {UPSTREAM_KEY}",
                        "Content-Type": "application/json",
                    },
                )
            ],
        )
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{args.workspaces} workspace(s), one API key each; load average before: {load}")
        print(
            f"Tollgate on :{web_port} ({args.workers} uvicorn workers, production settings, "
            f"moderation {'off' if args.no_moderation else 'on'}); fake upstream on "
            f":{upstream_port}; {os.cpu_count()} CPUs"
        )
        if args.serve:
            print(
                f"serving: metered http://127.0.0.1:{web_port}/api/v1/summaries "
                f"keys {' '.join(secrets)}; upstream {upstream}; pids "
                f"{[p.pid for p in procs]}",
                flush=True,
            )
            time.sleep(args.serve)
            return
        roots = {"web": procs[1].pid, "upstream": procs[0].pid}
        arun(measure(args, direct, metered, upstream, roots))
    finally:
        for proc in reversed(procs):
            stop(proc)


async def _probe(target: Target) -> tuple[int, bytes]:
    conn = Connection(target.host, target.port)
    try:
        return await conn.request(target.raw)
    finally:
        conn.close()


def _exit_on_sigterm(signum, frame):
    raise SystemExit(1)  # run main()'s cleanup: stop the servers we started


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    main()
