from django.conf import settings

from iridium.live import protocol
from iridium.live.consumers import StreamConsumer

from . import access, answers
from .models import Message


class ChatConsumer(StreamConsumer):
    """ws/chat/<pk>/: the conversation's owner only. Frames: send, stop, regenerate, retry, edit."""

    target = answers.TARGET
    handlers = {
        protocol.SEND: "on_send",
        protocol.REGENERATE: "on_regenerate",
        protocol.RETRY: "on_regenerate",
        protocol.EDIT: "on_edit",
    }

    async def load(self, user, object_id):
        return await access.conversations_for(user).filter(pk=object_id).afirst()

    def answers(self):
        return Message.objects.filter(conversation=self.object, role=Message.Role.ASSISTANT)

    async def on_send(self, frame):
        content = protocol.text(frame, limit=settings.CHAT_MAX_MESSAGE_CHARS)
        await answers.send(
            conversation=self.object,
            user=self.user,
            content=content,
            client_id=protocol.client_id(frame),
        )

    async def on_regenerate(self, frame):
        await answers.regenerate(conversation=self.object, user=self.user)

    async def on_edit(self, frame):
        message_id, content = protocol.edit(frame, limit=settings.CHAT_MAX_MESSAGE_CHARS)
        await answers.edit(
            conversation=self.object,
            user=self.user,
            message_id=message_id,
            content=content,
            client_id=protocol.client_id(frame),
        )
