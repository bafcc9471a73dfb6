from django.apps import AppConfig


class CodegenConfig(AppConfig):
    name = "codegen"
    verbose_name = "Code and content generation"
