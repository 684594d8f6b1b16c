from django import template

from usage import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def quota_summary(context):
    """The current workspace's plan and quota (as GET /api/v1/quota says it)."""
    request = context.get("request")
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return None
    return selectors.quota(workspace=workspace)
