from django.contrib import admin

from iridium.accounts import audit

from .models import Article, Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "user",
        "status",
        "priority",
        "category",
        "assigned_to",
        "created_at",
    ]
    list_filter = ["status", "priority", "category", "source"]
    search_fields = ["title", "description", "user__username"]
    list_select_related = ["user", "assigned_to"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A ticket read by staff here is in the audit log, as on the ticket's page."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            ticket = self.get_object(request, object_id)
            if ticket is not None and ticket.user_id != request.user.pk:
                audit.record(request.user, audit.READ_TICKET, ticket.ai_session_id,
                             subject=ticket.user, detail="admin")  # fmt: skip
        return response


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "tags", "published", "updated_at"]
    list_filter = ["published"]
    search_fields = ["title", "body", "tags"]

    def save_model(self, request, obj, form, change):
        if not obj.author_id:
            obj.author = request.user
        super().save_model(request, obj, form, change)
