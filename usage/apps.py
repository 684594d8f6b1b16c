from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = "Usage (the meter)"

    def ready(self) -> None:
        from usage import lifecycle, privacy, schema, signals  # noqa: F401

        lifecycle.register()  # start-up journal replay, drain on SIGTERM
        privacy.register()
