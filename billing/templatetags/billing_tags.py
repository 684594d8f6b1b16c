from decimal import Decimal

from django import template

from billing.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "usd") -> str:
    """{{ tier.monthly_price|money:tier.currency }} → "$29.00" """
    return format_money(amount, currency or "usd")
