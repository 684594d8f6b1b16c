from django.urls import path

from usage import views

app_name = "usage"
urlpatterns = [
    path("usage/", views.usage, name="usage"),
    path("usage/export.csv", views.usage_csv, name="usage_csv"),
    path("usage/members/<int:membership_id>/cap/", views.member_cap, name="member_cap"),
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/edit/", views.key_edit, name="key_edit"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key_revoke"),
]
