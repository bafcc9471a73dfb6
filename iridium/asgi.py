"""ASGI entry point: HTTP through Django, websockets through Channels.

Run with any ASGI server, e.g. `uvicorn iridium.asgi:application --workers 4`.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iridium.settings")
# Django must be set up before anything imports models (the websocket routes do).
django.setup(set_prefix=False)

from iridium.web.middleware import ASGIHandler  # noqa: E402

# Django's ASGI handler (what `get_asgi_application` returns), with its middleware on the loop.
django_asgi_app = ASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

import iridium.ai.service  # noqa: E402, F401  (loaded now, not during the first request)
from iridium.infra.serving import settle_garbage_collector  # noqa: E402
from iridium.routing import websocket_urlpatterns  # noqa: E402
from iridium.web.lifespan import lifespan  # noqa: E402
from iridium.web.sockets import SameOriginValidator, socket_auth  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are small (one stylesheet, a few scripts); serving them here keeps the
        # two-command set-up whole. A reverse proxy or CDN may serve STATIC_ROOT instead.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "lifespan": lifespan,
        "websocket": SameOriginValidator(socket_auth(URLRouter(websocket_urlpatterns))),
    }
)

settle_garbage_collector()  # everything is loaded: see iridium.infra.serving
