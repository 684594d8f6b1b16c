"""Invoice and credit-note PDFs, rendered from HTML with WeasyPrint.

Why WeasyPrint: it is a real, maintained HTML/CSS → PDF engine (pure Python over
Pango, no browser or external binary), already a Tollgate dependency, renders on
these machines (Debian's Pango), and its text is extractable (pypdf), which is
how the tests read the number, parties and totals back.

The PDF shows what Stripe fixes at finalization (number, parties, lines, tax,
totals), not the payment state, so the same invoice always renders the same
document; the server caches the bytes per invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from .pages import money
from .state import State

CSS = """
@page { size: A4; margin: 18mm 16mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; color: #1a1f36; }
h1 { font-size: 18pt; margin: 0 0 4mm; }
.parties { display: flex; justify-content: space-between; margin: 6mm 0; }
.party { width: 48%; }
.party h2 { font-size: 9pt; text-transform: uppercase; color: #697386; margin: 0 0 1mm; }
table { width: 100%; border-collapse: collapse; margin-top: 4mm; }
th { text-align: left; border-bottom: 1px solid #1a1f36; padding: 1.5mm 0; font-size: 8.5pt; }
td { padding: 1.5mm 0; border-bottom: 1px solid #e3e8ee; vertical-align: top; }
.num { text-align: right; }
.totals td { border: 0; padding: .8mm 0; }
.totals .grand td { font-weight: bold; border-top: 1px solid #1a1f36; }
.meta td { border: 0; padding: .3mm 4mm .3mm 0; }
.note { margin-top: 8mm; color: #697386; font-size: 8pt; }
"""


def _day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else "—"


def _address_lines(address: dict | None) -> list[str]:
    if not address:
        return []
    city = " ".join(x for x in (address.get("postal_code"), address.get("city")) if x)
    lines = [address.get("line1"), address.get("line2"), city, address.get("state")]
    return [x for x in [*lines, address.get("country")] if x]


def _party(title: str, name: str | None, lines: list[str], tax_ids: list[dict], email) -> str:
    rows = [f"<strong>{escape(name or '—')}</strong>"]
    rows += [escape(x) for x in lines]
    rows += [
        f"{escape(t['type'].upper().replace('_', ' '))}: {escape(t['value'])}" for t in tax_ids
    ]
    if email:
        rows.append(escape(email))
    return f"<div class='party'><h2>{title}</h2>{'<br>'.join(rows)}</div>"


def _seller(state: State) -> str:
    account = state.account
    tax_ids = [account["tax_id"]] if account.get("tax_id") else []
    return _party(
        "From", account["name"], _address_lines(account["address"]), tax_ids, account.get("email")
    )


def _buyer(invoice: dict) -> str:
    return _party(
        "Bill to",
        invoice.get("customer_name"),
        _address_lines(invoice.get("customer_address")),
        invoice.get("customer_tax_ids") or [],
        invoice.get("customer_email"),
    )


def _line_rows(lines: list[dict], currency: str) -> str:
    rows = []
    for ln in lines:
        period = ln.get("period") or {}
        when = f"{_day(period.get('start'))} to {_day(period.get('end'))}" if period else ""
        tax = sum(t["amount"] for t in ln.get("taxes") or [])
        rows.append(
            f"<tr><td>{escape(ln.get('description') or '')}<br><small>{when}</small></td>"
            f"<td class='num'>{ln.get('quantity') or ''}</td>"
            f"<td class='num'>{money(ln['amount'], currency)}</td>"
            f"<td class='num'>{money(tax, currency)}</td></tr>"
        )
    return "".join(rows)


def _tax_rows(state: State, invoice: dict, currency: str) -> str:
    rows = []
    for t in invoice.get("total_taxes") or []:
        rate = state.objects.get("tax_rate", {}).get(t["tax_rate_details"]["tax_rate"], {})
        label = f"{rate.get('display_name', 'Tax')} {rate.get('percentage', 0):g}%"
        if t["taxability_reason"] == "reverse_charge":
            label += " (reverse charge)"
        label += f" on {money(t['taxable_amount'], currency)}"
        rows.append(
            f"<tr><td>{escape(label)}</td><td class='num'>{money(t['amount'], currency)}</td></tr>"
        )
    return "".join(rows)


HEAD = (
    "<tr><th>Description</th><th class='num'>Qty</th><th class='num'>Amount</th>"
    "<th class='num'>Tax</th></tr>"
)


def _row(label: str, value: str, cls: str = "") -> str:
    return f"<tr class='{cls}'><td>{escape(label)}</td><td class='num'>{value}</td></tr>"


def invoice_html(state: State, invoice: dict) -> str:
    cur = invoice["currency"]
    discount = sum(d["amount"] for d in invoice.get("total_discount_amounts") or [])
    discount_row = (
        f"<tr><td>Discount</td><td class='num'>-{money(discount, cur)}</td></tr>"
        if discount
        else ""
    )
    issued = invoice["status_transitions"]["finalized_at"]
    reverse = any(
        t["taxability_reason"] == "reverse_charge" for t in invoice.get("total_taxes") or []
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Invoice {escape(invoice["number"] or invoice["id"])}</title><style>{CSS}</style></head><body>
<h1>Invoice</h1>
<table class="meta">
<tr><td>Invoice number</td><td><strong>{escape(invoice["number"] or "")}</strong></td></tr>
<tr><td>Date of issue</td><td>{_day(issued)}</td></tr>
<tr><td>Date due</td><td>{_day(invoice.get("due_date") or issued)}</td></tr>
</table>
<div class="parties">{_seller(state)}{_buyer(invoice)}</div>
<table>{HEAD}
{_line_rows(invoice["lines"]["data"], cur)}</table>
<table class="totals">
<tr><td>Subtotal</td><td class="num">{money(invoice["subtotal"], cur)}</td></tr>
{discount_row}
{_row("Total excluding tax", money(invoice["total_excluding_tax"], cur))}
{_tax_rows(state, invoice, cur)}
<tr class="grand"><td>Total</td><td class="num">{money(invoice["total"], cur)}</td></tr>
{_row("Amount due", money(invoice["amount_due"], cur) + " " + escape(cur.upper()))}
</table>
{"<p class='note'>Reverse charge: VAT to be accounted for by the recipient.</p>" if reverse else ""}
<p class="note">Demo document rendered by a fake Stripe server — not a real invoice.</p>
</body></html>"""


def credit_note_html(state: State, note: dict) -> str:
    invoice = state.get("invoice", note["invoice"])
    cur = note["currency"]
    tax = sum(t["amount"] for t in note.get("total_taxes") or [])
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Credit note {escape(note["number"])}</title><style>{CSS}</style></head><body>
<h1>Credit note</h1>
<table class="meta">
<tr><td>Credit note number</td><td><strong>{escape(note["number"])}</strong></td></tr>
<tr><td>Invoice</td><td>{escape(invoice["number"] or invoice["id"])}</td></tr>
<tr><td>Date of issue</td><td>{_day(note["created"])}</td></tr>
<tr><td>Reason</td><td>{escape(note.get("reason") or "—")}</td></tr>
</table>
<div class="parties">{_seller(state)}{_buyer(invoice)}</div>
<table>{HEAD}
{_line_rows(note["lines"]["data"], cur)}</table>
<table class="totals">
<tr><td>Subtotal</td><td class="num">{money(note["subtotal"], cur)}</td></tr>
<tr><td>Tax</td><td class="num">{money(tax, cur)}</td></tr>
<tr class="grand"><td>Total credited</td><td class="num">{money(note["total"], cur)}</td></tr>
</table>
<p class="note">{escape(note.get("memo") or "")}</p>
</body></html>"""


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on first PDF: it takes a moment to load

    return HTML(string=html).write_pdf()
