from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "iridium.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from django.conf import settings
        from django.db.models.signals import post_delete

        from .deletion import user_deleted

        post_delete.connect(user_deleted, sender=settings.AUTH_USER_MODEL, weak=False)
