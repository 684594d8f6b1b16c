from django.apps import AppConfig


class AiFeaturesConfig(AppConfig):
    name = "ai_features"

    def ready(self) -> None:
        from ai_features import privacy

        privacy.register()
