from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models


class Plan(models.Model):
    """What a user may spend and which models serve them.

    The three plans (free, pro, enterprise) come from a data migration; admins edit their
    figures. The AI service reads the models, budget, limit and privacy rule from here.
    """

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in lists.")
    default_model = models.CharField(
        max_length=100, help_text="Model used for everyday requests, e.g. gpt-4o-mini."
    )
    advanced_model = models.CharField(
        max_length=100,
        help_text="Model used for advanced requests or when the advanced-model flag is on.",
    )
    monthly_budget_usd = models.DecimalField(
        "monthly AI budget (USD)",
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0))],
    )
    daily_request_limit = models.PositiveIntegerField(
        help_text="AI requests a user on this plan may make per day (UTC)."
    )
    max_output_tokens = models.PositiveIntegerField(
        default=4096,
        validators=[MinValueValidator(16)],
        help_text="The longest answer (in tokens) one AI call may write. Budgets reserve what a "
        "call of this length costs while it runs.",
    )
    max_answers_in_flight = models.PositiveSmallIntegerField(
        "answers in flight",
        default=4,
        validators=[MinValueValidator(1)],
        help_text="How many AI answers one user may have being written at once.",
    )
    privacy_mode_forced = models.BooleanField(
        default=False,
        help_text="Keep prompts and answers out of analytics for every call on this plan.",
    )

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name

    @classmethod
    def default(cls):
        return cls.objects.get(slug=settings.DEFAULT_PLAN_SLUG)


class Organization(models.Model):
    """A company whose members may share a plan (PostHog group `company`)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="organizations",
        help_text="When set, every member uses this plan instead of their own.",
    )
    monthly_budget_usd = models.DecimalField(
        "monthly AI budget (USD)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Spending cap for all members together; empty for none.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class User(AbstractUser):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
    )
    plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        related_name="users",
        help_text="The user's own plan; an organization's plan, when set, takes its place.",
    )

    def save(self, *args, **kwargs):
        # Every user has a plan; a new one starts on the default plan unless given another.
        if self.plan_id is None:
            self.plan = Plan.default()
        super().save(*args, **kwargs)

    @property
    def effective_plan(self) -> Plan:
        """The plan that governs this user's AI use: the organization's plan wins when set."""
        if self.organization_id and self.organization.plan_id:
            return self.organization.plan
        return self.plan


class PlanChange(models.Model):
    """One change of a user's or an organization's plan: who changed what, from, to, when."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="plan_changes"
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="plan_changes",
    )
    from_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, organization__isnull=True)
                | models.Q(user__isnull=True, organization__isnull=False),
                name="plan_change_has_one_subject",
            )
        ]

    def __str__(self):
        subject = self.user or self.organization
        return f"{subject}: {self.from_plan or '-'} → {self.to_plan or '-'}"


class AuditEntry(models.Model):
    """A member of staff read a person's AI content (or a person downloaded their own data):
    who, what, whose, when. Written by `iridium.accounts.audit.record`; read-only in admin."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="audit_entries"
    )
    # The actor's name is kept so that the entry still says who after their account is gone.
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=40, db_index=True)
    target = models.CharField(max_length=200, help_text="what was read, e.g. a trace or ticket id")
    subject = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="whose content it was, when one person's",
    )
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self):
        return f"{self.actor_username} {self.action} {self.target}"
