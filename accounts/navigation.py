"""The main navigation, as data: each link says which permission (accounts/roles.py)
it needs, so a person sees only what their role can open. Adding a page to the
nav is one line here (e.g. `NavLink("Invoices", "billing:invoices", (Perm.VIEW_BILLING,))`).

`slot` entries are rendered by a template another app owns (the feature links
come from the ai_features registry: a new feature appears without touching this)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from accounts.roles import Perm


@dataclass(frozen=True)
class NavLink:
    label: str
    url_name: str = ""
    perms: tuple[str, ...] = ()  # any of these; empty: every member
    slot: str = ""  # a template to include instead of a link
    testid: str = ""


MAIN_NAV: list[NavLink] = [
    NavLink("Dashboard", "accounts:dashboard", testid="nav-dashboard"),
    NavLink("Features", slot="ai_features/_nav.html", perms=(Perm.USE_FEATURES,)),
    NavLink("Documents", "ai_features:documents", (Perm.USE_FEATURES,), testid="nav-documents"),
    NavLink("Usage", "usage:usage", (Perm.VIEW_OWN_USAGE, Perm.VIEW_ALL_USAGE), testid="nav-usage"),
    NavLink("API keys", "usage:keys", (Perm.MANAGE_OWN_KEYS,), testid="nav-keys"),
    NavLink("Billing", "billing:overview", (Perm.VIEW_BILLING,), testid="nav-billing"),
    NavLink("Invoices", "finance:invoices", (Perm.VIEW_BILLING,), testid="nav-invoices"),
]


@dataclass(frozen=True)
class ShownLink:
    label: str
    url: str
    slot: str
    testid: str
    current: bool


def links_for(membership, path: str = "") -> list[ShownLink]:
    """The links `membership` may follow (none without a workspace)."""
    if membership is None:
        return []
    shown = []
    for link in MAIN_NAV:
        if link.perms and not any(membership.can(p) for p in link.perms):
            continue
        url = ""
        if link.url_name:
            try:
                url = reverse(link.url_name)
            except NoReverseMatch:  # an app that isn't installed
                continue
        current = bool(url) and path.startswith(url) and url != "/"
        shown.append(ShownLink(link.label, url, link.slot, link.testid, current))
    return shown
