from channels.db import database_sync_to_async
from django.conf import settings

from iridium.core import streams
from iridium.core.consumers import TOO_LONG, StreamConsumer

from . import answers
from .models import Conversation, Message

EMPTY_MESSAGE = "Type a message first."


class ChatConsumer(StreamConsumer):
    """ws/chat/<pk>/: the conversation's owner only. Frames: send, stop, regenerate, retry."""

    noun = "conversation"

    async def load_object(self, user, object_id):
        return await Conversation.objects.filter(pk=object_id, user=user).afirst()

    def group_name(self):
        return answers.group_for(self.object_id)

    def run_key(self):
        return answers.run_key(self.object_id)

    async def handlers(self):
        return {
            "send": self.on_send,
            "stop": self.on_stop,
            "regenerate": self.on_regenerate,
            "retry": self.on_regenerate,
        }

    async def on_ready(self):
        await database_sync_to_async(answers.mark_interrupted)(self.object)
        in_progress = self.answer_in_progress()
        if in_progress is None:  # perhaps being written by another worker: its saved progress
            streaming = await self.object.messages.filter(status=Message.Status.STREAMING).afirst()
            in_progress = (
                {"message_id": streaming.pk, "text": streaming.content} if streaming else None
            )
        return {"type": "ready", "conversation": self.object_id, "in_progress": in_progress}

    async def on_send(self, frame):
        content = frame.get("content")
        if not isinstance(content, str) or not content.strip():
            await self.send_error("empty", EMPTY_MESSAGE)
            return
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(content) > limit:
            await self.send_error("too_long", TOO_LONG.format(length=len(content), limit=limit))
            return
        try:
            await answers.send(
                conversation=self.object,
                user=self.user,
                content=content,
                client_id=str(frame.get("client_id") or "")[:64],
            )
        except answers.ChatError as error:
            await self.send_error("busy", str(error), text=content)

    async def on_stop(self, frame):
        await streams.stop(self.run_key())

    async def on_regenerate(self, frame):
        try:
            await answers.regenerate(conversation=self.object, user=self.user)
        except answers.ChatError as error:
            await self.send_error("busy", str(error))
