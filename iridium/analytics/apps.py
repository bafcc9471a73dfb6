from django.apps import AppConfig
from django.db.models.signals import post_delete, pre_delete


class AnalyticsConfig(AppConfig):
    name = "iridium.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        from iridium.accounts.models import User

        from .rollups import user_deleted, user_deleting

        # A deleted user's conversations leave the roll-ups (ConversationSeen has no user).
        pre_delete.connect(user_deleting, sender=User, weak=False)
        post_delete.connect(user_deleted, sender=User, weak=False)
