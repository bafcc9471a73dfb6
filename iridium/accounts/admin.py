from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from .models import AuditEntry, Organization, Plan, PlanChange, User
from .services import change_user_plans, record_plan_change


class PlanHistoryInline(admin.TabularInline):
    model = PlanChange
    fk_name = "user"
    verbose_name_plural = "plan history"
    fields = ["changed_at", "from_plan", "to_plan", "changed_by", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OrganizationPlanHistoryInline(PlanHistoryInline):
    fk_name = "organization"


class RecordsPlanChangesMixin:
    """Record a PlanChange when the admin's form changes the object's plan."""

    def save_model(self, request, obj, form, change):
        from_plan = form.initial.get("plan") if change else None
        super().save_model(request, obj, form, change)
        if change and "plan" in form.changed_data:
            record_plan_change(
                subject=obj,
                from_plan=Plan.objects.filter(pk=from_plan).first(),
                changed_by=request.user,
                note="admin form",
            )


@admin.register(User)
class UserAdmin(RecordsPlanChangesMixin, DjangoUserAdmin):
    list_display = [
        "username",
        "email",
        "plan",
        "organization",
        "effective_plan_name",
        "is_staff",
        "is_superuser",
        "is_active",
    ]
    list_filter = ["plan", "organization", "is_staff", "is_superuser", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name", "organization__name"]
    list_select_related = ["plan", "organization__plan"]
    autocomplete_fields = ["organization"]
    inlines = [PlanHistoryInline]
    fieldsets = [
        *DjangoUserAdmin.fieldsets,
        ("Plan and organization", {"fields": ["plan", "organization"]}),
    ]
    add_fieldsets = [
        *DjangoUserAdmin.add_fieldsets,
        ("Plan and organization", {"fields": ["plan", "organization"]}),
    ]

    def get_changeform_initial_data(self, request):
        return {"plan": Plan.default().pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="effective plan")
    def effective_plan_name(self, obj):
        return obj.effective_plan.name

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            return actions
        for plan in Plan.objects.all():
            name = f"move_to_plan_{plan.slug}"
            actions[name] = (
                self._move_to_plan_action(plan),
                name,
                f"Move selected users to the {plan.name} plan",
            )
        return actions

    @staticmethod
    def _move_to_plan_action(plan):
        def move_to_plan(modeladmin, request, queryset):
            changed = change_user_plans(
                users=queryset, plan=plan, changed_by=request.user, note="admin bulk action"
            )
            modeladmin.message_user(
                request, f"{changed} user(s) moved to the {plan.name} plan.", messages.SUCCESS
            )

        return move_to_plan


class MemberInline(admin.TabularInline):
    model = User
    fk_name = "organization"
    verbose_name_plural = "members"
    fields = ["username", "email", "plan", "is_staff"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(RecordsPlanChangesMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "member_count", "created_at"]
    list_filter = ["plan"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MemberInline, OrganizationPlanHistoryInline]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("plan").annotate(_members=Count("members"))
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj):
        return obj._members


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "default_model",
        "advanced_model",
        "monthly_budget_usd",
        "daily_request_limit",
        "max_output_tokens",
        "max_answers_in_flight",
        "privacy_mode_forced",
        "user_count",
    ]
    list_editable = ["default_model", "advanced_model", "monthly_budget_usd", "daily_request_limit"]
    readonly_fields = ["slug"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_users=Count("users"))

    @admin.display(description="users", ordering="_users")
    def user_count(self, obj):
        return obj._users

    def get_readonly_fields(self, request, obj=None):
        # The slug is how code finds the plans; it is set once, when a plan is created.
        return self.readonly_fields if obj else []


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record nobody writes or changes by hand: readable with the view permission."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlanChange)
class PlanChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "user", "organization", "from_plan", "to_plan", "changed_by"]
    list_filter = ["to_plan", "from_plan", "changed_at"]
    search_fields = ["user__username", "organization__name", "changed_by__username"]
    list_select_related = ["user", "organization", "from_plan", "to_plan", "changed_by"]
    date_hierarchy = "changed_at"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Who read whose AI content, and when."""

    list_display = ["at", "actor_username", "action", "target", "subject", "detail"]
    list_filter = ["action", "at"]
    search_fields = ["actor_username", "target", "subject__username"]
    date_hierarchy = "at"
    list_select_related = ["subject"]
