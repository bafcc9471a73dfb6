from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("", views.index, name="index"),
    path("tickets/new/", views.new, name="new"),
    path("tickets/<int:pk>/", views.ticket, name="ticket"),
    path("tickets/<int:pk>/assign/", views.assign, name="assign"),
    path("tickets/<int:pk>/status/", views.set_status, name="status"),
    path("tickets/<int:pk>/reopen/", views.reopen, name="reopen"),
    path("queue/", views.queue, name="queue"),
    path("articles/", views.articles, name="articles"),
    path("articles/<int:pk>/", views.article, name="article"),
]
