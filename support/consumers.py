from asgiref.sync import sync_to_async

from iridium.infra.db import socket_database_call
from iridium.infra.errors import Busy, NotAllowed
from iridium.live import fanout, protocol
from iridium.live.consumers import StreamConsumer
from iridium.live.rendering import message_html

from . import access, answers, services
from .models import TicketMessage

ONLY_THE_OWNER = "Only the ticket's owner can ask for a person."


class TicketConsumer(StreamConsumer):
    """ws/support/tickets/<pk>/: the ticket's owner and staff. Frames: send, stop, retry, human."""

    target = answers.TARGET
    handlers = {
        protocol.SEND: "on_send",
        protocol.RETRY: "on_retry",
        protocol.HUMAN: "on_human",
    }

    async def load(self, user, object_id):
        # The access rule reads the user's permissions from the database: in its thread.
        def visible():
            return access.tickets_for(user).filter(pk=object_id).first()

        return await socket_database_call(visible)

    def answers(self):
        return TicketMessage.objects.filter(ticket=self.object, kind=TicketMessage.Kind.ASSISTANT)

    async def after_ready(self):
        # A ticket nobody has answered yet (filed from a chat, say) gets its first answer now,
        # when its owner opens it.
        owner = self.user.pk == self.object.user_id
        if owner and await socket_database_call(answers.pending_first_response, self.object):
            await answers.start_answer(self.object_id)

    async def on_send(self, frame):
        content = protocol.text(frame, limit=services.MAX_TEXT)
        message = await sync_to_async(services.post_message)(
            ticket=self.object, author=self.user, body=content
        )
        await fanout.group_send(
            self.key,
            {
                "type": protocol.USER_MESSAGE,
                "message": message.frame(),
                "html": await socket_database_call(message_html, message),
            },
        )
        if message.kind == TicketMessage.Kind.CUSTOMER:
            await answers.start_answer(self.object_id)

    async def on_retry(self, frame):
        failed = await self.answers().filter(status=TicketMessage.Status.ERROR).alast()
        if failed is not None:
            await failed.adelete()
        if not await answers.start_answer(self.object_id):
            raise Busy(answers.BUSY)

    async def on_human(self, frame):
        if self.user.pk != self.object.user_id:
            raise NotAllowed(ONLY_THE_OWNER)
        await sync_to_async(services.ask_for_human)(ticket=self.object)
        await fanout.group_send(self.key, protocol.notice("handed_over", answers.HANDED_OVER))
