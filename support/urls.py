from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("", views.index, name="index"),
    path("tickets/<int:pk>/", views.ticket, name="ticket"),
    path("articles/<int:pk>/", views.article, name="article"),
]
