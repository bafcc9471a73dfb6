from django.urls import path

from .consumers import CreationConsumer

websocket_urlpatterns = [path("ws/generate/<int:pk>/", CreationConsumer.as_asgi())]
