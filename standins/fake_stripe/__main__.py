"""`python -m standins.fake_stripe --port 12111 --webhook-url URL --webhook-secret whsec_…`"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from . import persist
from .server import FakeStripe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake, stateful Stripe API (demo payments).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", help="POST signed events here")
    parser.add_argument("--webhook-secret", help="the whsec_… the receiver verifies with")
    parser.add_argument("--api-key", help="accept only this sk_test_… key (default: any)")
    parser.add_argument("--public-url", help="address browsers use for the hosted pages")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--state-file", type=Path, help="keep the account's state here across restarts (JSON)"
    )
    args = parser.parse_args(argv)
    if bool(args.webhook_url) != bool(args.webhook_secret):
        parser.error("--webhook-url and --webhook-secret go together")
    fake = FakeStripe(
        args.host,
        args.port,
        api_key=args.api_key,
        public_url=args.public_url,
        webhook_attempts=8,
        quiet=not args.verbose,
    )
    saver = None
    if args.state_file:
        restored = persist.load(fake.state, args.state_file)
        saver = persist.Saver(fake.state, args.state_file).start()
        if restored:
            print(f"==> fake Stripe: state restored from {args.state_file}", flush=True)
    if args.webhook_url:
        fake.add_webhook_endpoint(args.webhook_url, args.webhook_secret)
    fake.start()
    print(f"==> fake Stripe (demo payments) at {fake.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    fake.stop()
    if saver is not None:
        saver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
