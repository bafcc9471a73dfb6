"""Writes to support: tickets and their messages."""

from django.core.exceptions import ValidationError

from .models import Ticket

TITLE_REQUIRED = "A ticket needs a title."
DESCRIPTION_REQUIRED = "A ticket needs a description."
TITLE_TOO_LONG = "A ticket title can be at most 200 characters."
DESCRIPTION_TOO_LONG = "A ticket description can be at most 10,000 characters."
MAX_DESCRIPTION = 10_000


def create_ticket(
    *, user, title: str, description: str, priority="normal", category="other", source="form"
) -> Ticket:
    title, description = (title or "").strip(), (description or "").strip()
    if not title:
        raise ValidationError(TITLE_REQUIRED)
    if len(title) > 200:
        raise ValidationError(TITLE_TOO_LONG)
    if not description:
        raise ValidationError(DESCRIPTION_REQUIRED)
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(DESCRIPTION_TOO_LONG)
    if priority not in Ticket.Priority.values:
        raise ValidationError(f"Unknown priority {priority!r}.")
    if category not in Ticket.Category.values:
        raise ValidationError(f"Unknown category {category!r}.")
    return Ticket.objects.create(
        user=user,
        title=title,
        description=description,
        priority=priority,
        category=category,
        source=source,
    )
