from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class AIConfig(AppConfig):
    name = "iridium.ai"
    label = "ai"
    verbose_name = "AI service"

    def ready(self):
        from .models import PriceOverride
        from .pricing import overrides

        def forget_overrides(**kwargs):
            overrides.invalidate()

        post_save.connect(forget_overrides, sender=PriceOverride, weak=False)
        post_delete.connect(forget_overrides, sender=PriceOverride, weak=False)
