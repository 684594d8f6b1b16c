from django import template

from billing.services.exports import download_url

register = template.Library()


@register.filter
def download_link(job) -> str:
    """The signed, expiring link of a finished export ('' while not downloadable)."""
    return download_url(job) or ""


@register.filter
def can(membership, perm: str) -> bool:
    """{% if current_membership|can:"view_billing" %} — accounts/roles.py decides."""
    return bool(membership) and membership.can(perm)


@register.filter
def backoffice_finance(user) -> bool:
    from billing.backoffice import is_backoffice_finance

    return is_backoffice_finance(user)
