"""Runs pytest with DATABASE_URL / REDIS_URL pointing at real servers: the ones
given in the environment, or throwaway ones started here."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import localservices

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(localservices.throwaway_postgres())
            print(f"==> throwaway PostgreSQL at {env['DATABASE_URL']}")
        if not env.get("REDIS_URL"):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            env["REDIS_URL"] = stack.enter_context(localservices.throwaway_redis(workdir))
            print(f"==> throwaway Redis at {env['REDIS_URL']}")
        env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
        cmd = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", *argv]
        return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
