from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from iridium.core.markdown import render as render_markdown

from .models import Article, Ticket


def _get_ticket_for_user(request, pk) -> Ticket:
    """The ticket if it is the user's own or the user is staff; 404 otherwise."""
    ticket = get_object_or_404(Ticket.objects.select_related("user", "assigned_to"), pk=pk)
    if ticket.user_id != request.user.pk and not request.user.is_staff:
        raise Http404
    return ticket


@login_required
def index(request):
    tickets = Ticket.objects.filter(user=request.user)
    return render(request, "support/index.html", {"tickets": tickets})


@login_required
def ticket(request, pk):
    return render(request, "support/ticket.html", {"ticket": _get_ticket_for_user(request, pk)})


@login_required
def article(request, pk):
    found = get_object_or_404(Article, pk=pk)
    if not found.published and not request.user.is_staff:
        raise Http404
    return render(
        request, "support/article.html", {"article": found, "body": render_markdown(found.body)}
    )
