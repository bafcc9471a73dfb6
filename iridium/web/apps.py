import logging

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "iridium.web"
    label = "web"
    verbose_name = "Iridium"

    def ready(self):
        from iridium.infra import checks  # noqa: F401  (registers the system checks)
        from iridium.infra.serving import QueryStringsOut

        # What people search for stays out of the access log.
        logging.getLogger("uvicorn.access").addFilter(QueryStringsOut())
