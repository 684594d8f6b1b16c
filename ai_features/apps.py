from django.apps import AppConfig


class AiFeaturesConfig(AppConfig):
    name = "ai_features"
