"""The audit log of staff reads of people's AI content (a trace's prompts and answers, a
ticket's thread read by staff, the CSV export), and of a person's download of their own data.
One function writes it; admin reads it (Accounts and plans > audit log).

Actions are short constant strings so that the log can be filtered: see the names below."""

from __future__ import annotations

from .models import AuditEntry, User

READ_TRACE_CONTENT = "read trace content"
READ_TICKET = "read ticket"
EXPORT_CSV = "export generations"
EXPORT_PERSONAL_DATA = "export personal data"


def record(actor: User, action: str, target: str, *, subject: User | None = None, detail=""):
    """Write one entry: `actor` did `action` on `target` (whose content was `subject`'s)."""
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username(),
        action=action,
        target=str(target)[:200],
        subject=subject,
        detail=str(detail)[:300],
    )
