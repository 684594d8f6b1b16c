from django.urls import path

from accounts import views, views_privacy

app_name = "accounts"
urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("workspaces/", views.workspace_switch, name="workspace_switch"),
    path("workspaces/switch/", views.workspace_switch),  # older links
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("workspace/settings/", views.workspace_settings, name="workspace_settings"),
    path("workspace/leave/", views.workspace_leave, name="workspace_leave"),
    path("workspace/transfer/", views.ownership_transfer, name="ownership_transfer"),
    path("workspace/members/", views.members, name="members"),
    path("workspace/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("workspace/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("workspace/invitations/", views.invitation_create, name="invitation_create"),
    path(
        "workspace/invitations/<int:pk>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "workspace/invitations/<int:pk>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("privacy/", views_privacy.privacy_statement, name="privacy"),
    path("account/privacy/", views_privacy.privacy_settings, name="privacy_settings"),
    path("account/delete/", views_privacy.account_delete, name="account_delete"),
    path("workspace/privacy/", views_privacy.workspace_privacy, name="workspace_privacy"),
    path("workspace/delete/", views_privacy.workspace_delete, name="workspace_delete"),
    path(
        "workspace/delete/undo/", views_privacy.workspace_delete_undo, name="workspace_delete_undo"
    ),
    path("workspace/audit/", views_privacy.audit_log, name="audit_log"),
    path("workspace/audit.csv", views_privacy.audit_log_csv, name="audit_log_csv"),
    path("invitations/<int:pk>/join/", views.invitation_join, name="invitation_join"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
