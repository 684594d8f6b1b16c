"""A private Tollgate for the fault suite: its own PostgreSQL and Redis (which
the tests stop and start), the fake upstream and uvicorn web workers, all as
subprocesses on ports of their own. Nothing here touches the machine's
PostgreSQL (5432) or Redis (6379).

The ledger is read straight from the stack's database (psycopg), the upstream's
side from the fake's served-call log: the suite compares the two."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bin"))

import localservices  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
UPSTREAM_KEY = "sk-" + "faults-fake-upstream-key-0123456789"

SEED = """
from decimal import Decimal
from django.conf import settings
from accounts.models import Membership, User, Workspace
from usage.models import LIFETIME_START, RateCard
from usage.services import key_create
ws = Workspace.objects.create(name="Faults")
user = User.objects.create_user(email="faults@example.com", password="faults-0123-xyz")
member = Membership.objects.create(workspace=ws, user=user, role="owner")
RateCard.objects.create(model=settings.OPENAI_DEFAULT_MODEL, input_per_million=Decimal("0.15"),
    cached_input_per_million=Decimal("0.075"), output_per_million=Decimal("0.60"),
    effective_from=LIFETIME_START)
print("SECRET=" + key_create(membership=member, name="faults").secret)
"""

RECOVER = """
from usage.tasks import release_stale_reservations
print("RECOVERED=" + repr(release_stale_reservations()))
"""


def _port_in_range() -> int:
    """A free port in this engineer's range when given (FAULTS_PORT_BASE), else any."""
    base = os.environ.get("FAULTS_PORT_BASE")
    if not base:
        return localservices.free_port()
    import socket

    for port in range(int(base), int(base) + 100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port in the range")


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Stack:
    workdir: Path
    pg: localservices.RestartablePostgres
    redis: localservices.RestartableRedis
    upstream_url: str
    secret: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def journal(self) -> Path:
        return self.workdir / "journal"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
        env |= {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "OPENAI_BASE_URL": f"{self.upstream_url}/v1",
            "OPENAI_API_KEY": UPSTREAM_KEY,
            "OPENAI_TIMEOUT_SECONDS": "20",
            "OPENAI_MAX_RETRIES": "0",
            "TOLLGATE_LIMITS_PROVIDER": "usage.limits.default_limits",
            "TOLLGATE_DEFAULT_INCLUDED_TOKENS": "1000000000",
            "TOLLGATE_DEFAULT_RPM": "1000000",
            "TOLLGATE_DEFAULT_TPM": "1000000000",
            "TOLLGATE_METER_JOURNAL_DIR": str(self.journal),
            "TOLLGATE_METER_DB_THREADS": "4",
            "PYTHONUNBUFFERED": "1",
        }
        return env | extra

    def manage(self, code: str, **extra: str) -> str:
        out = subprocess.run(
            [PY, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        return out.stdout

    def recover(self) -> dict:
        """The beat task, as the worker runs it: journal replay, then stale
        reservations (cutoff 0: every call of this test has ended)."""
        out = self.manage(RECOVER, TOLLGATE_STALE_RESERVATION_MINUTES="0")
        return eval(out.split("RECOVERED=", 1)[1].strip())  # noqa: S307 - our own repr

    @contextlib.contextmanager
    def web(self, *, workers: int = 1, **extra: str) -> Iterator[Web]:
        port = _port_in_range()
        args = [PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        args += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
        args += ["--timeout-graceful-shutdown", "10"]
        log = open(self.workdir / f"web-{port}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env(**extra), stdout=log, stderr=subprocess.STDOUT
        )
        web = Web(f"http://127.0.0.1:{port}", proc, self.workdir / f"web-{port}.log")
        try:
            _wait_http(f"{web.url}/healthz", timeout=240)
            yield web
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()

    # --- the upstream's side -------------------------------------------------------

    def upstream(self, path: str, payload: dict | None = None) -> dict:
        if payload is None:
            return httpx.get(f"{self.upstream_url}{path}", timeout=10).json()
        return httpx.post(f"{self.upstream_url}{path}", json=payload, timeout=10).json()

    def reset_upstream(self, latency_ms: int = 0) -> None:
        self.upstream("/_control/reset", {})
        self.upstream("/_control/config", {"latency_ms": latency_ms})

    def served(self) -> int:
        return len(self.upstream("/_control/served")["served"])

    # --- the ledger ------------------------------------------------------------------

    def sql(self, query: str) -> list[tuple]:
        with psycopg.connect(self.pg.url, connect_timeout=5) as conn:
            return conn.execute(query).fetchall()

    def ledger(self) -> Ledger:
        rows = self.sql(
            "SELECT status, total_tokens, upstream_request_id, request_id FROM usage_usageevent"
        )
        held = self.sql("SELECT count(*), coalesce(sum(tokens), 0) FROM usage_reservation")[0]
        counters = self.sql(
            "SELECT coalesce(sum(reserved), 0), coalesce(sum(used), 0) FROM usage_usagecounter "
            "WHERE scope = 'workspace'"
        )[0]
        return Ledger(rows, held[0], int(counters[0]), int(counters[1]))

    def clear_ledger(self) -> None:
        with psycopg.connect(self.pg.url, connect_timeout=5) as conn:
            conn.execute(
                "TRUNCATE usage_usageevent, usage_usagerollup, usage_reservation, "
                "usage_moderationlog, usage_idempotencyrecord CASCADE"
            )
            conn.execute("UPDATE usage_usagecounter SET used = 0, reserved = 0")
        for leftover in self.journal.glob("*.json"):
            leftover.unlink()


@dataclass
class Web:
    url: str
    proc: subprocess.Popen
    log: Path

    def connections_by_worker(self) -> dict[int, int]:
        """Established client connections per worker process (from `ss`)."""
        port = self.url.rsplit(":", 1)[1]
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
        )
        counts: dict[int, int] = {}
        for pid in re.findall(r"pid=(\d+)", out.stdout):
            counts[int(pid)] = counts.get(int(pid), 0) + 1
        return counts

    def server_errors(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if '"status_code": 500' in line]


@dataclass
class Ledger:
    events: list[tuple]
    reservations: int
    reserved: int
    used: int

    @property
    def charged(self) -> list[tuple]:
        return [e for e in self.events if e[1] > 0]

    def duplicate_upstream_ids(self) -> int:
        ids = [e[2] for e in self.charged if e[2]]
        return len(ids) - len(set(ids))

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status, *_ in self.charged:
            counts[status] = counts.get(status, 0) + 1
        return counts


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    # Its own folder under /tmp: PostgreSQL runs as `postgres`, which can't enter
    # pytest's per-user temporary folders.
    pg_dir = Path(tempfile.mkdtemp(prefix="tollgate-faults-pg-"))
    pg = localservices.RestartablePostgres(pg_dir)
    redis = localservices.RestartableRedis(workdir)
    workdir.joinpath("journal").mkdir(parents=True, exist_ok=True)
    upstream_port = _port_in_range()
    upstream = subprocess.Popen(
        [PY, "-m", "standins.fake_openai", "--port", str(upstream_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack = Stack(workdir, pg, redis, f"http://127.0.0.1:{upstream_port}")
    try:
        pg.start()
        redis.start()
        _wait_http(f"{stack.upstream_url}/_control/stats")
        out = subprocess.run(
            [PY, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        stack.secret = stack.manage(SEED).split("SECRET=", 1)[1].strip()
        yield stack
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
        redis.stop()
        pg.stop("fast")
        shutil.rmtree(pg_dir, ignore_errors=True)
