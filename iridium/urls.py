from django.contrib import admin
from django.urls import include, path

from iridium.accounts import views as account_views
from iridium.web import account, public_demo
from iridium.web import views as web_views

urlpatterns = [
    path("", web_views.home, name="home"),
    path("healthz", web_views.healthz, name="healthz"),
    path("demo/start/", public_demo.start, name="public_demo_start"),
    path("plans/", account_views.plans, name="plans"),
    path("accounts/me/", account.account, name="account"),
    path("accounts/me/data.json", account.download, name="account_data"),
    path("accounts/me/delete/", account.delete, name="account_delete"),
    path("accounts/", include("iridium.accounts.urls")),
    path("chat/", include("chat.urls")),
    path("support/", include("support.urls")),
    path("generate/", include("codegen.urls")),
    path("analytics/", include("iridium.analytics.urls")),
    path("admin/", admin.site.urls),
]
