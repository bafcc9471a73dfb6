from django.contrib import admin

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


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "tags", "published", "updated_at"]
    list_filter = ["published"]
    search_fields = ["title", "body", "tags"]

    def save_model(self, request, obj, form, change):
        if not obj.author_id:
            obj.author = request.user
        super().save_model(request, obj, form, change)
