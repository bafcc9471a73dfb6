from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"

    def ready(self):
        from iridium.analytics import access as analytics_access
        from iridium.analytics import comparisons, owners
        from iridium.live import tool_notes

        from . import access, answers, selectors, tools

        # Agents read the AI content of the tickets they handle, and only those.
        analytics_access.register_content_rule(access.TRACE_PREFIX, access.handles_trace)
        owners.register(access.TRACE_PREFIX, access.describe_trace)
        comparisons.register_outcomes("customer-support", selectors.ticket_outcomes)
        # Support's tools say how their use shows under an answer (chat offers the search too).
        tool_notes.register(tools.SEARCH_KNOWLEDGE_BASE.name, tools.SEARCH_NOTE)
        tool_notes.register(answers.HAND_OVER, answers.HAND_OVER_NOTE)
