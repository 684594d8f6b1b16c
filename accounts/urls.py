from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("workspaces/switch/", views.workspace_switch, name="workspace_switch"),
    path("workspace/settings/", views.workspace_settings, name="workspace_settings"),
    path("workspace/members/", views.members, name="members"),
]
