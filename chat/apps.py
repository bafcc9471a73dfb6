from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self):
        from iridium.analytics import owners

        from . import access

        # The analytics console names a trace's object and links back to it.
        owners.register(access.TRACE_PREFIX, access.describe_trace)
