"""Who may see a conversation: its owner only. Views and the socket ask here."""

from django.shortcuts import get_object_or_404

from .models import Conversation


def conversations_for(user):
    """The conversations `user` may see and change."""
    return Conversation.objects.filter(user=user)


def get_conversation(user, pk) -> Conversation:
    """The conversation, or 404: other people's conversations do not exist for `user`."""
    return get_object_or_404(conversations_for(user), pk=pk)
