from django.conf import settings


def workspace(request):
    return {
        "current_workspace": getattr(request, "workspace", None),
        "current_membership": getattr(request, "membership", None),
        "demo_upstream": getattr(settings, "OPENAI_DEMO_UPSTREAM", False),
        "site_url": settings.SITE_URL,
        "support_email": settings.TOLLGATE_SUPPORT_EMAIL,
    }
