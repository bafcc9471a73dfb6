from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "iridium.core"
    label = "core"
    verbose_name = "Iridium"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
