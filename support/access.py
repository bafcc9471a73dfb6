"""Who may see a ticket: its owner, and staff. Views and the socket ask here."""

from django.shortcuts import get_object_or_404

from .models import Ticket


def tickets_for(user):
    """The tickets `user` may see: their own, or every ticket for staff."""
    tickets = Ticket.objects.select_related("user", "assigned_to")
    return tickets if user.is_staff else tickets.filter(user=user)


def get_ticket(user, pk) -> Ticket:
    """The ticket, or 404: other people's tickets do not exist for `user`."""
    return get_object_or_404(tickets_for(user), pk=pk)
