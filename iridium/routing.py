"""Websocket routes of every app, gathered for iridium.asgi."""

websocket_urlpatterns = []
