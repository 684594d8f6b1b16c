"""`python -m standins.fake_stripe --port 12111 --webhook-url URL --webhook-secret whsec_…`"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from . import persist
from .server import FakeStripe


def account_from_env() -> dict:
    """The operator's public details for invoice PDFs, from the same variables the
    Django settings read (TOLLGATE_OPERATOR_*); the defaults match settings/base.py."""
    from .finance import operator_account

    env = os.environ.get
    return operator_account(
        name=env("TOLLGATE_OPERATOR_LEGAL_NAME", "Tollgate Demo Ltd"),
        address_lines=env("TOLLGATE_OPERATOR_ADDRESS", "1 Example Street\\n10115 Berlin")
        .replace("\\n", "\n")
        .splitlines(),
        country=env("TOLLGATE_OPERATOR_COUNTRY", "DE"),
        tax_id=env("TOLLGATE_OPERATOR_TAX_ID", "DE136695976"),
        email=env("TOLLGATE_OPERATOR_EMAIL", "billing@tollgate.local"),
    )


def _warm_pdf_renderer() -> None:
    from .invoice_pdf import render_pdf

    render_pdf("<p>warm-up</p>")


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
    fake.configure_account(**account_from_env())
    if args.webhook_url:
        fake.add_webhook_endpoint(args.webhook_url, args.webhook_secret)
    fake.start()
    # Load WeasyPrint now (seconds on a busy machine), not on the first invoice PDF.
    threading.Thread(target=_warm_pdf_renderer, daemon=True).start()
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
