"""Who may see and handle tickets. Views, the socket and the console ask here.

A ticket is its owner's; support agents (staff with the permission to change tickets, which the
"Support agents" group gives) see and handle every ticket. Other staff (analysts, admins without
that permission) do not read tickets."""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Ticket

HANDLE_PERMISSION = "support.change_ticket"
AGENTS_GROUP = "Support agents"
# What the group gives (its data migration, support 0005, writes the same).
AGENT_PERMISSIONS = [
    "add_article",
    "change_article",
    "view_article",
    "change_ticket",
    "view_ticket",
]


def is_agent(user) -> bool:
    """Whether `user` handles tickets: staff with the permission to change them."""
    return bool(user.is_active and user.is_staff and user.has_perm(HANDLE_PERMISSION))


def agents():
    """Everyone a ticket may be assigned to."""
    return (
        get_user_model()
        .objects.with_perm(HANDLE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend")
        .filter(is_staff=True)
        .order_by("username")
    )


def agents_group():
    """The "Support agents" group with its permissions (made by a migration; made again here
    where it is missing, as in a database emptied by tests)."""
    from django.contrib.auth.models import Group, Permission

    group, created = Group.objects.get_or_create(name=AGENTS_GROUP)
    if created:
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="support", codename__in=AGENT_PERMISSIONS
            )
        )
    return group


def tickets_for(user):
    """The tickets `user` may see: their own, or every ticket for a support agent."""
    tickets = Ticket.objects.select_related("user", "assigned_to")
    return tickets if is_agent(user) else tickets.filter(user=user)


def get_ticket(user, pk) -> Ticket:
    """The ticket, or 404: other people's tickets do not exist for `user`."""
    return get_object_or_404(tickets_for(user), pk=pk)


def agent_required(view):
    """Support agents only: others are sent to log in, or refused (403) when signed in."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_agent(request.user):
            raise PermissionDenied("Only support agents handle tickets.")
        return view(request, *args, **kwargs)

    return wrapped


TRACE_PREFIX = "support-ticket-"


def handles(user, ticket_id) -> bool:
    """Whether `user` handles the ticket: an agent who may see it. They may read the AI
    content of its trace (iridium.analytics.access)."""
    return is_agent(user) and tickets_for(user).filter(pk=ticket_id).exists()


def _ticket_number(trace_id: str) -> str:
    """The ticket of its session ("support-ticket-7") or of one answer's trace
    ("support-ticket-7-31")."""
    return trace_id.removeprefix(TRACE_PREFIX).split("-")[0]


def handles_trace(user, trace_id: str) -> bool:
    number = _ticket_number(trace_id)
    return number.isdigit() and handles(user, int(number))


def describe_trace(user, trace_id: str) -> dict | None:
    """The ticket a trace belongs to, for the trace's page; linked for those who may see it."""
    from django.urls import reverse

    number = _ticket_number(trace_id)
    if not number.isdigit():
        return None
    found = Ticket.objects.filter(pk=int(number)).select_related("user").first()
    if found is None:
        return None
    visible = user.is_authenticated and tickets_for(user).filter(pk=found.pk).exists()
    return {
        "label": f"Ticket #{found.pk} of {found.user.get_username()}",
        "url": reverse("support:ticket", args=[found.pk]) if visible else None,
    }
