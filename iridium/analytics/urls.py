from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("budgets/", views.budgets, name="budgets"),
    path("experiments/", views.experiments, name="experiments"),
    path("traces/", views.traces, name="traces"),
    path("traces/<str:trace_id>/", views.trace, name="trace"),
    path("sessions/<str:session_id>/", views.session, name="session"),
    path("export.csv", views.export, name="export"),
]
