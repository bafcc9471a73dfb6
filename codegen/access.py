"""Who may see a creation: its author only. Views and the socket ask here."""

from django.shortcuts import get_object_or_404

from .models import Creation


def creations_for(user):
    return Creation.objects.filter(user=user)


def get_creation(user, pk) -> Creation:
    """The creation, or 404: nobody else's history exists for `user`."""
    return get_object_or_404(creations_for(user), pk=pk)


TRACE_PREFIX = "codegen-"


def describe_trace(user, trace_id: str) -> dict | None:
    """The creation a trace belongs to, for the trace's page; linked for its author only."""
    from django.urls import reverse

    found = Creation.objects.filter(trace_id=trace_id).select_related("user").first()
    if found is None:
        return None
    return {
        "label": f"{found.get_kind_display()} {found.pk} of {found.user.get_username()}",
        "url": reverse("codegen:creation", args=[found.pk]) if found.user_id == user.pk else None,
    }
