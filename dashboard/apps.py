from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The screens and the people: their admin, tasks and signals (the models are metrics')."""

    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from dashboard import boards  # noqa: F401 - connects the board-changed signals
