"""The hosted pages: Checkout ("Pay"), the Billing Portal ("Cancel plan", "Back")
and invoices. Plain HTML, clearly labelled as a demo: no real card is charged."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from .invoices import product_name
from .state import State

ZERO_DECIMAL = {
    "jpy",
    "krw",
    "vnd",
    "clp",
    "xaf",
    "xof",
    "bif",
    "djf",
    "gnf",
    "kmf",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vuv",
    "xpf",
}
STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}
.banner{background:#fff4d6;border:1px solid #f0c36d;padding:.5rem 1rem;border-radius:6px}
table{width:100%;border-collapse:collapse}td{padding:.4rem 0;border-bottom:1px solid #e3e8ee}
.total td{font-weight:bold}.error{color:#b3093c;font-weight:bold}
button{background:#635bff;color:#fff;border:0;padding:.6rem 1.2rem;border-radius:6px;cursor:pointer}
button.secondary{background:#fff;color:#635bff;border:1px solid #635bff}
input{padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0 1rem}
.sub{border:1px solid #e3e8ee;border-radius:8px;padding:1rem;margin:1rem 0}
"""


def money(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount:,} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    number = f"{whole:,}.{cents:02d}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%B %-d, %Y")


def layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        "<p class='banner' role='note'>Demo payments — a fake Stripe server for testing. "
        "No real card is charged.</p>"
        f"{body}</body></html>"
    )


def checkout_page(state: State, session: dict, lines: list[dict], error: str = "") -> str:
    rows = "".join(
        f"<tr><td>{escape(li['description'])} \u00d7 {li['quantity'] or 'usage'}</td>"
        f"<td style='text-align:right'>{money(li['amount_total'], li['currency'])}"
        f" / {escape(li['price']['recurring']['interval'])}</td></tr>"
        for li in lines
    )
    total = money(session["amount_total"], session["currency"])
    if session["status"] != "open":
        return layout("Checkout", f"<h1>This checkout is {escape(session['status'])}.</h1>")
    email = session["customer_email"] or _customer_email(state, session["customer"])
    cancel = (
        f"<p><a href='{escape(session['cancel_url'])}'>← Back (cancel)</a></p>"
        if session["cancel_url"]
        else ""
    )
    error_html = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    return layout(
        "Checkout",
        f"<h1>Subscribe</h1>{cancel}<table>{rows}"
        f"<tr class='total'><td>Total due today</td><td style='text-align:right'>{total}</td>"
        f"</tr></table>{error_html}"
        # Feedback while the payment and its webhooks go through (a few seconds).
        f"<form method='post' action='/c/pay/{escape(session['id'])}' "
        "onsubmit=\"var b=this.querySelector('button');b.disabled=true;"
        "b.textContent='Processing payment…';"
        "this.querySelector('.paying').hidden=false\">"
        f"<label>Email<input name='email' type='email' value='{escape(email or '')}'></label>"
        "<label>Card number<input name='card' value='4242 4242 4242 4242' "
        "autocomplete='off'></label>"
        f"<button type='submit'>Pay {total}</button>"
        "<p class='paying' role='status' hidden>Confirming your payment with your bank… "
        "you'll be taken back in a moment.</p></form>",
    )


def _customer_email(state: State, customer_id: str | None) -> str:
    customer = state.objects.get("customer", {}).get(customer_id or "")
    return (customer or {}).get("email") or ""


def portal_page(state: State, session: dict, message: str = "", error: str = "") -> str:
    customer = state.get("customer", session["customer"])
    subs = [
        s
        for s in state.find("subscription")
        if s["customer"] == customer["id"] and s["status"] != "canceled"
    ]
    invoices = [i for i in state.find("invoice") if i["customer"] == customer["id"]][:10]
    back = (
        f"<p><a href='{escape(session['return_url'])}'>← Back</a></p>"
        if session["return_url"]
        else ""
    )
    notes = (f"<p role='status'>{escape(message)}</p>" if message else "") + (
        f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    )
    body = "".join(_portal_subscription(state, session, s) for s in subs) or (
        "<p>No active subscription.</p>"
    )
    return layout(
        "Billing portal",
        f"{back}<h1>Billing</h1><p>{escape(customer['email'] or customer['id'])}</p>{notes}"
        f"<h2>Current plan</h2>{body}{_card_form(session)}{_invoice_table(invoices)}",
    )


def _portal_subscription(state: State, session: dict, sub: dict) -> str:
    item = sub["items"]["data"][0]
    price = item["price"]
    end = day(item["current_period_end"])
    action = f"/p/session/{escape(session['id'])}/subscriptions/{escape(sub['id'])}"
    if sub["cancel_at_period_end"]:
        state_line = f"<p>Your plan will be canceled on {end}.</p>"
        button = f"<form method='post' action='{action}/renew'><button>Renew plan</button></form>"
    else:
        state_line = f"<p>Renews on {end}.</p>"
        button = (
            f"<form method='post' action='{action}/cancel'>"
            "<button class='secondary'>Cancel plan</button></form>"
        )
    pending = (
        "<p class='error'>A plan change is waiting for payment.</p>"
        if sub["pending_update"]
        else ""
    )
    amount = money(price["unit_amount"] or 0, price["currency"])
    return (
        f"<div class='sub'><strong>{escape(product_name(state, price))}</strong> — {amount} per "
        f"{escape(price['recurring']['interval'])} <small>({escape(sub['status'])})</small>"
        f"{state_line}{pending}{button}</div>"
    )


def _card_form(session: dict) -> str:
    return (
        "<h2>Payment method</h2>"
        f"<form method='post' action='/p/session/{escape(session['id'])}/card'>"
        "<label>Card number<input name='card' value='4242 4242 4242 4242'></label>"
        "<button class='secondary'>Update card</button></form>"
    )


def _invoice_table(invoices: list[dict]) -> str:
    if not invoices:
        return "<h2>Invoices</h2><p>No invoices yet.</p>"
    rows = "".join(
        f"<tr><td>{day(i['created'])}</td><td>{money(i['total'], i['currency'])}</td>"
        f"<td>{escape(i['status'])}</td>"
        f"<td><a href='/i/{escape(i['id'])}'>View</a></td></tr>"
        for i in invoices
    )
    return f"<h2>Invoices</h2><table>{rows}</table>"


def invoice_page(state: State, invoice: dict) -> str:
    rows = "".join(
        f"<tr><td>{escape(ln['description'])}</td>"
        f"<td style='text-align:right'>{money(ln['amount'], ln['currency'])}</td></tr>"
        for ln in invoice["lines"]["data"]
    )
    return layout(
        f"Invoice {invoice['number'] or invoice['id']}",
        f"<h1>Invoice {escape(invoice['number'] or invoice['id'])}</h1>"
        f"<p>Status: {escape(invoice['status'])}</p><table>{rows}<tr class='total'><td>Total"
        f"</td><td style='text-align:right'>{money(invoice['total'], invoice['currency'])}</td>"
        "</tr></table>",
    )
