from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The screens and the people: their admin, tasks and signals (the models are metrics')."""

    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from dashboard import signals  # noqa: F401 - connects the changes that reach sockets
