app_name = "ai_features"
urlpatterns: list = []
