from django.urls import path

from . import views

app_name = "codegen"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/<str:kind>/", views.create, name="create"),
    path("<int:pk>/", views.creation, name="creation"),
    path("<int:pk>/download/", views.download, name="download"),
    path("<int:pk>/delete/", views.delete, name="delete"),
]
