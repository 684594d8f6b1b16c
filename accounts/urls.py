from django.urls import path

from accounts import views

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
    path("invitations/<int:pk>/join/", views.invitation_join, name="invitation_join"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
