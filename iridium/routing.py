"""Websocket routes of every app, gathered for iridium.asgi."""

from chat.routing import websocket_urlpatterns as chat_routes
from codegen.routing import websocket_urlpatterns as codegen_routes
from support.routing import websocket_urlpatterns as support_routes

websocket_urlpatterns = [*chat_routes, *support_routes, *codegen_routes]
