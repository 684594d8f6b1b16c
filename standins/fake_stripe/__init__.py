"""A small, stateful, Stripe-compatible server for tests and the local demo run.

The real `stripe` SDK talks to it (`StripeClient(key, base_addresses={"api": url})`);
it keeps customers, products, prices, meters, subscriptions, invoices, Checkout and
Portal sessions in memory, serves hosted Checkout/Portal pages, and POSTs events to
webhook endpoints with real `Stripe-Signature` headers. No Django needed."""

from .events import API_VERSION, sign
from .server import FakeStripe

__all__ = ["API_VERSION", "FakeStripe", "sign"]
