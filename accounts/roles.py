"""Roles and what each may do, written down in one place."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    FINANCE = "finance", "Finance (read-only billing)"


class Perm(models.TextChoices):
    USE_FEATURES = "use_features", "Run AI features"
    MANAGE_OWN_KEYS = "manage_own_keys", "Create and revoke API keys"
    VIEW_OWN_USAGE = "view_own_usage", "See own usage"
    VIEW_ALL_USAGE = "view_all_usage", "See everyone's usage in the workspace"
    MANAGE_MEMBERS = "manage_members", "Invite, remove and change roles of members"
    MANAGE_WORKSPACE = "manage_workspace", "Rename the workspace"
    MANAGE_BILLING = "manage_billing", "Change plan, consent to upgrades, manage payment"
    VIEW_BILLING = "view_billing", "See plan, invoices and consent history"
    EXPORT_INVOICES = "export_invoices", "Export invoices and reports"
    EDIT_BILLING_DETAILS = "edit_billing_details", "Edit billing details (legal name, tax id)"
    TRANSFER_OWNERSHIP = "transfer_ownership", "Hand ownership to another member"
    VIEW_AUDIT_LOG = "view_audit_log", "See and export the workspace's audit log"
    MANAGE_SECURITY = "manage_security", "Require MFA, set how long prompts and answers are kept"
    EXPORT_WORKSPACE_DATA = "export_workspace_data", "Export all of the workspace's data"
    DELETE_WORKSPACE = "delete_workspace", "Delete the workspace"


_EVERYDAY = {Perm.USE_FEATURES, Perm.MANAGE_OWN_KEYS, Perm.VIEW_OWN_USAGE}
_BILLING_READ = {Perm.VIEW_BILLING, Perm.EXPORT_INVOICES}
# Owners, admins and finance keep what is printed on the invoices right.
_BILLING_DETAILS = {Perm.EDIT_BILLING_DETAILS}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(
        _EVERYDAY
        | _BILLING_READ
        | _BILLING_DETAILS
        | {
            Perm.VIEW_ALL_USAGE,
            Perm.MANAGE_MEMBERS,
            Perm.MANAGE_WORKSPACE,
            Perm.MANAGE_BILLING,
            Perm.TRANSFER_OWNERSHIP,
            Perm.VIEW_AUDIT_LOG,
            Perm.MANAGE_SECURITY,
            Perm.EXPORT_WORKSPACE_DATA,
            Perm.DELETE_WORKSPACE,
        }
    ),
    Role.ADMIN: frozenset(
        _EVERYDAY
        | _BILLING_READ
        | _BILLING_DETAILS
        | {Perm.VIEW_ALL_USAGE, Perm.MANAGE_MEMBERS, Perm.MANAGE_WORKSPACE, Perm.MANAGE_BILLING}
    ),
    Role.MEMBER: frozenset(_EVERYDAY),
    Role.FINANCE: frozenset(
        _BILLING_READ | _BILLING_DETAILS | {Perm.VIEW_ALL_USAGE, Perm.VIEW_OWN_USAGE}
    ),
}


def role_can(role: str, perm: str) -> bool:
    return perm in ROLE_PERMISSIONS.get(role, frozenset())
