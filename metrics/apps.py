from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Realtime metrics"

    def ready(self) -> None:
        from metrics import boards  # noqa: F401 - connects the board-changed signals
