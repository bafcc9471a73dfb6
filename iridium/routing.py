"""Websocket routes of every app, gathered for iridium.asgi."""

from django.urls import path, re_path

from chat.routing import websocket_urlpatterns as chat_routes
from codegen.routing import websocket_urlpatterns as codegen_routes
from iridium.web.public_demo import PublicDemoConsumer
from iridium.web.sockets import NoSuchSocket
from support.routing import websocket_urlpatterns as support_routes

websocket_urlpatterns = [
    *chat_routes,
    *support_routes,
    *codegen_routes,
    path("ws/demo/", PublicDemoConsumer.as_asgi()),  # the public demo of the home page
    re_path(r"", NoSuchSocket.as_asgi()),  # last: any other path is closed with 4404
]
