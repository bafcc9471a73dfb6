from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "iridium.web"
    label = "web"
    verbose_name = "Iridium"

    def ready(self):
        from iridium.infra import checks  # noqa: F401  (registers the system checks)
