from django.conf import settings
from django.db import models

from iridium.live.models import StreamedAnswer


class Ticket(models.Model):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Category(models.TextChoices):
        BILLING = "billing", "Billing"
        TECHNICAL = "technical", "Technical"
        ACCOUNT = "account", "Account"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tickets"
    )
    title = models.CharField(max_length=200)
    description = models.TextField()
    priority = models.CharField(max_length=10, choices=Priority, default=Priority.NORMAL)
    category = models.CharField(max_length=10, choices=Category, default=Category.OTHER)
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        limit_choices_to={"is_staff": True},
    )
    source = models.CharField(
        max_length=20, default="form", help_text="Where it was filed: form or chat."
    )
    needs_human = models.BooleanField(
        default=False, help_text="The customer or the assistant asked for a person."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "priority"])]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def ai_session_id(self) -> str:
        """What groups the traces of its answers (PostHog's `$ai_session_id`)."""
        return f"support-ticket-{self.pk}"

    @property
    def waiting_for_staff(self) -> bool:
        """Asked for a person, nobody assigned yet, and not settled (resolved or closed)."""
        return (
            self.needs_human
            and self.assigned_to_id is None
            and self.status in (self.Status.OPEN, self.Status.PENDING)
        )

    @property
    def ai_answers(self) -> bool:
        """The assistant answers until a person takes over (asked for, or an agent assigned)."""
        return (
            not self.needs_human
            and self.assigned_to_id is None
            and self.status
            in (
                self.Status.OPEN,
                self.Status.PENDING,
            )
        )


class TicketMessage(StreamedAnswer):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        AGENT = "agent", "Agent"
        ASSISTANT = "assistant", "Assistant"
        NOTE = "note", "Note"  # a change of the ticket told in its thread (reopened, ...)

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta(StreamedAnswer.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(status="streaming"),
                name="one_answer_being_written_per_ticket",
            )
        ]

    def __str__(self):
        return f"{self.kind}: {self.content[:40]}"

    ai_feature = "customer-support"

    @property
    def is_answer(self) -> bool:
        return self.kind == self.Kind.ASSISTANT

    @property
    def ai_session_id(self) -> str:
        return f"support-ticket-{self.ticket_id}"

    @property
    def trace_id(self) -> str:
        """The trace of this answer (one turn of its ticket)."""
        return f"{self.ai_session_id}-{self.pk}"

    @property
    def author_label(self) -> str:
        if self.is_answer:
            return "Support assistant"
        if self.kind == self.Kind.NOTE:
            return "Ticket status"
        name = self.author.get_username() if self.author else ""
        if self.kind == self.Kind.AGENT:
            return f"{name} (staff)"
        return name or "Customer"

    @property
    def author_username(self) -> str:
        return self.author.get_username() if self.author and not self.is_answer else ""

    @property
    def author_kind(self) -> str:
        return "" if self.is_answer else self.kind


class Article(models.Model):
    """A knowledge-base article written by staff; published ones are searchable by everybody."""

    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown.")
    tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated.")
    published = models.BooleanField(default=False)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title
