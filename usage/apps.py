from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage (the meter)"

    def ready(self) -> None:
        from usage import privacy, schema, signals  # noqa: F401

        privacy.register()
