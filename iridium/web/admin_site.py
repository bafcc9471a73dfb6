from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied


class IridiumAdminSite(admin.AdminSite):
    site_header = "Iridium administration"
    site_title = "Iridium admin"

    def login(self, request, extra_context=None):
        # Signed in without access: say so on Iridium's own 403 page, not with admin's log-in
        # form (which would invite them to sign in as somebody else).
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied("This part of Iridium is for staff.")
        from iridium.accounts.forms import AdminLoginForm  # (models are not ready at import)

        self.login_form = AdminLoginForm
        return super().login(request, extra_context)


class IridiumAdminConfig(AdminConfig):
    """Django's admin, on the site above (INSTALLED_APPS names this instead of the admin)."""

    default_site = "iridium.web.admin_site.IridiumAdminSite"
