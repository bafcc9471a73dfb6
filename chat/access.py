"""Who may see a conversation: its owner only. Views and the socket ask here."""

from django.shortcuts import get_object_or_404

from .models import Conversation


def conversations_for(user):
    """The conversations `user` may see and change."""
    return Conversation.objects.filter(user=user)


def get_conversation(user, pk) -> Conversation:
    """The conversation, or 404: other people's conversations do not exist for `user`."""
    return get_object_or_404(conversations_for(user), pk=pk)


TRACE_PREFIX = "conversation-"


def describe_trace(user, trace_id: str) -> dict | None:
    """The conversation a trace belongs to, for the trace's page; linked for its owner only."""
    from django.urls import reverse

    # Its session ("conversation-4") or one answer's trace ("conversation-4-17").
    number = trace_id.removeprefix(TRACE_PREFIX).split("-")[0]
    if not number.isdigit():
        return None
    found = Conversation.objects.filter(pk=int(number)).select_related("user").first()
    if found is None:
        return None
    return {
        "label": f"Conversation {found.pk} of {found.user.get_username()}",
        "url": reverse("chat:conversation", args=[found.pk]) if found.user_id == user.pk else None,
    }
