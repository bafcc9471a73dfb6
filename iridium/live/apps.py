from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "iridium.live"
    label = "live"
    verbose_name = "Live answers"
