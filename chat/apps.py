from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self):
        from iridium.analytics import owners
        from iridium.live import tool_notes

        from . import access, tools

        # The analytics console names a trace's object and links back to it.
        owners.register(access.TRACE_PREFIX, access.describe_trace)
        # How filing a ticket shows under an answer.
        tool_notes.register(tools.CREATE_SUPPORT_TICKET.name, tools.TICKET_NOTE)
