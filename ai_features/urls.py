from django.urls import path

from ai_features import views

app_name = "ai_features"
urlpatterns = [
    path("summarize/", views.summarize, name="summarize"),
]
