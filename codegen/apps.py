from django.apps import AppConfig


class CodegenConfig(AppConfig):
    name = "codegen"
    verbose_name = "Code and content generation"

    def ready(self):
        from iridium.analytics import owners

        from . import access

        # The analytics console names a trace's object and links back to it.
        owners.register(access.TRACE_PREFIX, access.describe_trace)
