from django.urls import path

from .consumers import TicketConsumer

websocket_urlpatterns = [path("ws/support/tickets/<int:pk>/", TicketConsumer.as_asgi())]
