from django.contrib import admin
from django.urls import include, path

from iridium.core import views as core_views

admin.site.site_header = "Iridium administration"
admin.site.site_title = "Iridium admin"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("accounts/", include("iridium.accounts.urls")),
    path("chat/", include("chat.urls")),
    path("support/", include("support.urls")),
    path("generate/", include("codegen.urls")),
    path("analytics/", include("iridium.analytics.urls")),
    path("admin/", admin.site.urls),
]
