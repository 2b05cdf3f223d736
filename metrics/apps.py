from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """The pipeline, and every model of the project (one app label: no migration churn)."""

    name = "metrics"
    verbose_name = "Realtime metrics"
