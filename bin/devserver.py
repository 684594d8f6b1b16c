"""The run command: migrate, seed demo data, then web + worker + beat together
(and the demo upstream when no OPENAI_API_KEY is set). Ctrl-C stops them all."""

from __future__ import annotations

import contextlib
import importlib.util
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


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def has_module(name: str) -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.util.find_spec(name) is not None
    finally:
        sys.path.pop(0)


def start(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    print(f"==> starting {name}: {' '.join(args[1:])}", flush=True)
    return name, subprocess.Popen(args, cwd=ROOT, env=env)


def start_demo_stripe(env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    """No STRIPE_SECRET_KEY: run the fake Stripe server (demo payments, no real card is
    charged) and point the web/worker processes and its webhooks at each other."""
    stripe_port = localservices.free_port()
    secret = "whsec_demo_fake_stripe_not_secret"  # noqa: S105 - a demo-only value
    proc = start(
        "demo payments (fake Stripe)",
        [
            PY,
            "-m",
            "standins.fake_stripe",
            "--port",
            str(stripe_port),
            "--webhook-url",
            f"{env['TOLLGATE_SITE_URL']}/stripe/webhook/",
            "--webhook-secret",
            secret,
        ],
        env,
    )
    localservices._wait_for(lambda: localservices._port_open(stripe_port), "fake Stripe", 15)
    env["STRIPE_SECRET_KEY"] = "sk_test_demo_fake_stripe"  # noqa: S105
    env["STRIPE_API_BASE"] = f"http://127.0.0.1:{stripe_port}"
    env["STRIPE_WEBHOOK_SECRET"] = secret
    env["STRIPE_DEMO_MODE"] = "true"
    print(f"==> DEMO PAYMENTS: fake Stripe at {env['STRIPE_API_BASE']} (no real charges)")
    return proc


def main() -> int:
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")
    public_host = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104
    env.setdefault("TOLLGATE_SITE_URL", f"http://{public_host}:{port}")
    procs: list[tuple[str, subprocess.Popen]] = []
    with contextlib.ExitStack() as stack:
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(localservices.throwaway_redis(VAR))
            print(f"==> embedded Redis at {env['REDIS_URL']}")
        if not env.get("DATABASE_URL"):
            # The meter's reservations are PostgreSQL statements (row locks in
            # one statement), so the embedded default is a private PostgreSQL.
            env["DATABASE_URL"] = stack.enter_context(
                localservices.private_postgres(VAR / "pgdata", database="tollgate", fsync=True)
            )
            print(f"==> embedded PostgreSQL (data in {VAR / 'pgdata'}) at {env['DATABASE_URL']}")
        if not env.get("OPENAI_API_KEY") and has_module("standins.fake_openai"):
            upstream_port = str(localservices.free_port())
            procs.append(
                start(
                    "demo upstream",
                    [PY, "-m", "standins.fake_openai", "--port", upstream_port],
                    env,
                )
            )
            env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{upstream_port}/v1"
            env["OPENAI_API_KEY"] = "demo-upstream-key"
            env["OPENAI_DEMO_UPSTREAM"] = "true"
        if not env.get("STRIPE_SECRET_KEY") and has_module("standins.fake_stripe"):
            procs.append(start_demo_stripe(env))
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
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
                    port,
                    # SIGTERM: finish requests in flight for up to 20 s, then the
                    # meter drains its background calls (config/lifespan.py).
                    "--timeout-graceful-shutdown",
                    "20",
                ],
                env,
            )
        )
        procs.append(
            start(
                "worker",
                [PY, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=INFO"],
                env,
            )
        )
        procs.append(
            start(
                "beat",
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel=INFO",
                    "--schedule",
                    str(VAR / "celerybeat"),
                ],
                env,
            )
        )
        print(
            f"\n==> Tollgate is running at {env['TOLLGATE_SITE_URL']}/  (Ctrl-C stops all)\n",
            flush=True,
        )
        try:
            while all(p.poll() is None for _, p in procs):
                time.sleep(0.5)
            dead = [n for n, p in procs if p.poll() is not None]
            print(f"==> {', '.join(dead)} stopped; shutting down the rest", flush=True)
            return 1
        except KeyboardInterrupt:
            print("\n==> stopping", flush=True)
            return 0
        finally:
            for _, p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for _, p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(main())
