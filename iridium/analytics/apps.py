from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "iridium.analytics"
    label = "analytics"
    verbose_name = "Analytics"
