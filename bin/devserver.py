"""The run command: web + worker + beat together (and the demo upstream and demo
Stripe when no OPENAI_API_KEY / STRIPE_SECRET_KEY is set). Ctrl-C stops them all.

A restart with nothing to do is quick: the side servers start while the
database starts, migrations run only when some are unapplied (one Django start
for migrate + seed, `prepare_run`, beside the start when nothing changed), and
the web server starts first; worker and beat follow as soon as it answers.
The demo Stripe keeps its state in var/demo-stripe.json and listens on a fixed
port (PORT + 1, or DEMO_STRIPE_PORT), so paid plans and invoice links survive
a restart."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import localservices

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
VAR = ROOT / "var"
DEMO_WEBHOOK_SECRET = "whsec_demo_fake_stripe_not_secret"  # noqa: S105 - a demo-only value
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


_BEGAN = time.monotonic()


def say(text: str) -> None:
    print(f"==> [{time.monotonic() - _BEGAN:4.1f}s] {text}", flush=True)


def has_module(name: str) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.util.find_spec(name) is not None
    finally:
        sys.path.pop(0)


def start(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    say(f"starting {name}")
    # Own session: Ctrl-C reaches only this supervisor, which stops the children
    # in order (no KeyboardInterrupt tracebacks from each of them).
    return name, subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)


def fixed_port(wanted: int) -> int:
    """`wanted` if it is free, else any free port (links then change: say so)."""
    if not localservices._port_open(wanted):
        return wanted
    port = localservices.free_port()
    say(f"port {wanted} is busy; using {port} (set DEMO_STRIPE_PORT to pin one)")
    return port


def start_demo_stripe(env: dict[str, str], web_port: int) -> tuple[str, subprocess.Popen]:
    """No STRIPE_SECRET_KEY: run the fake Stripe server (demo payments, no real card is
    charged) and point the web/worker processes and its webhooks at each other. Its
    state lives in var/demo-stripe.json, so a restart keeps customers, subscriptions
    and invoices; its port is fixed, so hosted invoice links keep working."""
    stripe_port = fixed_port(int(env.get("DEMO_STRIPE_PORT") or web_port + 1))
    proc = start(
        f"demo payments (fake Stripe, port {stripe_port})",
        [
            PY,
            "-m",
            "standins.fake_stripe",
            "--port",
            str(stripe_port),
            "--webhook-url",
            f"{env['TOLLGATE_SITE_URL']}/stripe/webhook/",
            "--webhook-secret",
            DEMO_WEBHOOK_SECRET,
            "--state-file",
            str(VAR / "demo-stripe.json"),
        ],
        env,
    )
    env["STRIPE_SECRET_KEY"] = "sk_test_demo_fake_stripe"  # noqa: S105
    env["STRIPE_API_BASE"] = f"http://127.0.0.1:{stripe_port}"
    env["STRIPE_WEBHOOK_SECRET"] = DEMO_WEBHOOK_SECRET
    env["STRIPE_DEMO_MODE"] = "true"
    return proc


def uvicorn_log_config() -> Path:
    """The web server logs in the same one-line format as Django and Celery."""
    path = VAR / "uvicorn-log.json"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"text": {"format": LOG_FORMAT}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "text"}},
        "loggers": {
            "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
    path.write_text(json.dumps(config))
    return path


def write_run_env(env: dict[str, str]) -> None:
    """For bin/manage: the running database and Redis (private ports change per run)."""
    keys = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    (VAR / "run.env").write_text("".join(f"{k}={env[k]}\n" for k in keys if env.get(k)))


def setup_fingerprint(env: dict[str, str]) -> str:
    """What the database set-up depends on: the migrations, the demo seed, the database.
    Unchanged since the last successful set-up: nothing to wait for at start-up."""
    digest = hashlib.sha256(env.get("DATABASE_URL_SOURCE", "").encode())
    files = sorted(ROOT.glob("*/migrations/*.py")) + sorted(ROOT.glob("*/demo.py"))
    files += sorted(ROOT.glob("*/management/commands/seed_demo.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


PREPARE = [PY, "manage.py", "prepare_run"]


def prepare(env: dict[str, str]) -> bool:
    """Migrate (only if needed) and seed, in one Django start, before the servers.
    False when nothing changed since the last run: then it runs later, beside them."""
    marker = VAR / "setup.sha256"
    fingerprint = setup_fingerprint(env)
    if marker.exists() and marker.read_text() == fingerprint:
        return False
    marker.unlink(missing_ok=True)
    subprocess.run(PREPARE, cwd=ROOT, env=env, check=True)
    marker.write_text(fingerprint)
    return True


def prepare_beside(env: dict[str, str]) -> subprocess.Popen:
    """The same check and seed refresh, at a lower priority, once the site answers."""
    return subprocess.Popen(PREPARE, cwd=ROOT, env=env, preexec_fn=lambda: os.nice(10))


def wait_until(procs, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for _, p in procs):
        if localservices._port_open(port):
            return
        time.sleep(0.05)


def supervise(procs: list[tuple[str, subprocess.Popen]], setup: subprocess.Popen | None) -> int:
    stopping = False

    def on_signal(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while all(p.poll() is None for _, p in procs):
            if setup is not None and setup.poll() is not None:
                if setup.returncode != 0:
                    (VAR / "setup.sha256").unlink(missing_ok=True)
                    say("the database check failed (see above); it runs first on the next start")
                setup = None
            time.sleep(0.5)
        dead = [n for n, p in procs if p.poll() is not None]
        say(f"{', '.join(dead)} stopped unexpectedly; shutting down the rest")
        return 1
    except KeyboardInterrupt:
        stopping = True
        print(flush=True)
        say("Ctrl-C: stopping web, worker, beat and the local services…")
        return 0
    finally:
        if setup is not None and setup.poll() is None:
            setup.terminate()  # the background check: before its database goes away
            setup.wait(timeout=10)
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if stopping:
            say("stopped cleanly. Run bin/run again to continue where you left off.")


def main() -> int:
    began = time.monotonic()
    # Ctrl-C is ours to handle even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.setdefault("LOG_FORMAT", "text")
    host = env.get("HOST", "127.0.0.1")
    port = int(env.get("PORT", "8000"))
    public_host = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104
    env.setdefault("TOLLGATE_SITE_URL", f"http://{public_host}:{port}")
    if localservices._port_open(port):
        say(f"port {port} is already in use: stop what runs there, or run PORT=8001 bin/run")
        return 1
    procs: list[tuple[str, subprocess.Popen]] = []
    try:
        return run(env, host, port, procs, began)
    except KeyboardInterrupt:  # Ctrl-C while starting up
        print(flush=True)
        say("Ctrl-C: stopped before start-up finished")
        return 0
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


def run(env: dict[str, str], host: str, port: int, procs: list, began: float) -> int:
    with contextlib.ExitStack() as stack:
        # The side servers start first and come up while the database does.
        if not env.get("OPENAI_API_KEY") and has_module("standins.fake_openai"):
            upstream_port = str(localservices.free_port())
            procs.append(
                start(
                    "demo upstream (local model server, no OpenAI calls)",
                    [PY, "-m", "standins.fake_openai", "--port", upstream_port],
                    env,
                )
            )
            env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{upstream_port}/v1"
            env["OPENAI_API_KEY"] = "demo-upstream-key"
            env["OPENAI_DEMO_UPSTREAM"] = "true"
            # The demo upstream also serves the org Usage/Costs APIs (reconciliation).
            env.setdefault("OPENAI_ADMIN_KEY", "demo-upstream-admin-key")
        if not env.get("STRIPE_SECRET_KEY") and has_module("standins.fake_stripe"):
            procs.append(start_demo_stripe(env, port))
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(localservices.throwaway_redis(VAR))
            say(f"embedded Redis at {env['REDIS_URL']}")
        env["DATABASE_URL_SOURCE"] = env.get("DATABASE_URL") or str(VAR / "pgdata")
        if not env.get("DATABASE_URL"):
            if not (VAR / "pgdata" / "PG_VERSION").exists():
                (VAR / "setup.sha256").unlink(missing_ok=True)  # a new, empty database
            # The meter's reservations are PostgreSQL statements (row locks in
            # one statement), so the embedded default is a private PostgreSQL.
            env["DATABASE_URL"] = stack.enter_context(
                localservices.private_postgres(VAR / "pgdata", database="tollgate", fsync=True)
            )
            say(f"embedded PostgreSQL (data in {VAR / 'pgdata'}) at {env['DATABASE_URL']}")
        write_run_env(env)
        if env.get("STRIPE_DEMO_MODE") == "true":
            stripe_port = int(env["STRIPE_API_BASE"].rsplit(":", 1)[1])
            localservices._wait_for(
                lambda: localservices._port_open(stripe_port), "fake Stripe", 15
            )
            say(f"DEMO PAYMENTS: fake Stripe at {env['STRIPE_API_BASE']} (no real charges)")
        try:
            prepared = prepare(env)
        except subprocess.CalledProcessError:
            say("setting up the database failed (see above); stopping")
            return 1
        procs.append(
            start(
                "web",
                [
                    PY,
                    "-m",
                    "uvicorn",
                    "config.asgi:application",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--log-config",
                    str(uvicorn_log_config()),
                    # SIGTERM: finish requests in flight for up to 20 s, then the
                    # meter drains its background calls (config/lifespan.py).
                    "--timeout-graceful-shutdown",
                    "20",
                ],
                env,
            )
        )
        # The web server gets the CPU first (what the person waits for); the
        # worker and beat start as soon as it answers (tasks wait in Redis).
        wait_until(procs, port)
        background_setup = None if prepared else prepare_beside(env)
        celery = [PY, "-m", "celery", "-A", "config", "--quiet"]
        procs.append(start("worker", [*celery, "worker", "--pool=solo", "-l", "INFO"], env))
        beat_schedule = str(VAR / "celerybeat")
        procs.append(start("beat", [*celery, "beat", "-l", "INFO", "-s", beat_schedule], env))
        print(
            f"\n==> Tollgate is running at {env['TOLLGATE_SITE_URL']}/ "
            f"(ready in {time.monotonic() - began:.1f}s)\n"
            "    Sign-up and invitation emails are printed here, in this console.\n"
            "    Another port: PORT=8001 bin/run.  Ctrl-C stops everything.\n",
            flush=True,
        )
        return supervise(procs, background_setup)


if __name__ == "__main__":
    sys.exit(main())
