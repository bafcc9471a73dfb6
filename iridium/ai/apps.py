from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AIConfig(AppConfig):
    name = "iridium.ai"
    label = "ai"
    verbose_name = "AI service"

    def ready(self):
        from iridium.accounts.models import Organization, Plan, User

        from .callers import forget_callers
        from .deletion import user_deleted
        from .flags import flag_store
        from .models import FlagOverride, PriceOverride
        from .pricing import overrides

        for model in (User, Organization, Plan):
            post_save.connect(forget_callers, sender=model, weak=False)
            post_delete.connect(forget_callers, sender=model, weak=False)

        def forget_overrides(**kwargs):
            overrides.invalidate()

        post_save.connect(forget_overrides, sender=PriceOverride, weak=False)
        post_delete.connect(forget_overrides, sender=PriceOverride, weak=False)
        post_save.connect(flag_store.forget, sender=FlagOverride, weak=False)
        post_delete.connect(flag_store.forget, sender=FlagOverride, weak=False)
        # What a user's deletion must also remove outside the database's own cascades.
        post_delete.connect(user_deleted, sender=User, weak=False)
