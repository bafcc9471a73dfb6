"""Who may see a creation: its author only. Views and the socket ask here."""

from django.shortcuts import get_object_or_404

from .models import Creation


def creations_for(user):
    return Creation.objects.filter(user=user)


def get_creation(user, pk) -> Creation:
    """The creation, or 404: nobody else's history exists for `user`."""
    return get_object_or_404(creations_for(user), pk=pk)
