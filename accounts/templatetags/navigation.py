from django import template

from accounts.navigation import links_for

register = template.Library()


@register.simple_tag(takes_context=True)
def main_nav(context):
    request = context.get("request")
    membership = getattr(request, "membership", None)
    return links_for(membership, getattr(request, "path", ""))


@register.simple_tag(takes_context=True)
def who_can(context, perm: str = "manage_members"):
    """Emails of the people in the current workspace who may `perm` (whom to ask)."""
    from accounts.models import Membership

    request = context.get("request")
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return []
    members = Membership.objects.for_workspace(workspace).select_related("user")
    return sorted(m.user.email for m in members if m.can(perm) and m.user.is_active)
