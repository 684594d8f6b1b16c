from django import template

from accounts.adapters import pending_invitation as _pending_invitation

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_invitation(context):
    """The invitation this browser is carrying through sign-up/sign-in."""
    request = context.get("request")
    if request is None or not hasattr(request, "session"):
        return None
    invitation, _ = _pending_invitation(request)
    return invitation


@register.filter
def role_badge(role: str) -> str:
    return {"owner": "badge-ok", "admin": "badge-info", "finance": "badge-warn"}.get(role, "")
