from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import privacy, signals  # noqa: F401

        privacy.register()
