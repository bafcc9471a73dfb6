from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from iridium.core import streams
from iridium.core.consumers import StreamConsumer

from . import answers, services
from .models import Ticket, TicketMessage


class TicketConsumer(StreamConsumer):
    """ws/support/tickets/<pk>/: the ticket's owner and staff. Frames: send, stop, retry, human."""

    noun = "ticket"

    async def load_object(self, user, object_id):
        tickets = Ticket.objects.select_related("user", "assigned_to")
        if not user.is_staff:
            tickets = tickets.filter(user=user)
        return await tickets.filter(pk=object_id).afirst()

    def group_name(self):
        return answers.group_for(self.object_id)

    def run_key(self):
        return answers.run_key(self.object_id)

    async def handlers(self):
        return {
            "send": self.on_send,
            "stop": self.on_stop,
            "retry": self.on_retry,
            "human": self.on_human,
        }

    async def on_ready(self):
        in_progress = self.answer_in_progress()
        # A ticket nobody has answered yet (filed from a chat, say) gets its first answer now,
        # when its owner opens it.
        owner = self.user.pk == self.object.user_id
        pending = database_sync_to_async(answers.pending_first_response)
        if in_progress is None and owner and await pending(self.object):
            await answers.start_answer(self.object_id)
        return {"type": "ready", "ticket": self.object_id, "in_progress": in_progress}

    async def on_send(self, frame):
        try:
            message = await sync_to_async(services.post_message)(
                ticket=self.object, author=self.user, body=frame.get("content")
            )
        except ValidationError as error:
            await self.send_error("invalid", " ".join(error.messages), text=frame.get("content"))
            return
        await streams.group_send(
            self.group, {"type": "user_message", "message": await _frame(message)}
        )
        if message.kind == TicketMessage.Kind.CUSTOMER:
            await answers.start_answer(self.object_id)

    async def on_stop(self, frame):
        await streams.stop(self.run_key())

    async def on_retry(self, frame):
        failed = await self.object.messages.filter(
            kind=TicketMessage.Kind.ASSISTANT, status=TicketMessage.Status.ERROR
        ).alast()
        if failed is not None:
            await failed.adelete()
        if not await answers.start_answer(self.object_id):
            await self.send_error("busy", answers.BUSY)

    async def on_human(self, frame):
        if self.user.pk != self.object.user_id:
            await self.send_error("forbidden", "Only the ticket's owner can ask for a person.")
            return
        await sync_to_async(services.ask_for_human)(ticket=self.object)
        await streams.group_send(
            self.group, {"type": "handed_over", "message": answers.HANDED_OVER}
        )


@database_sync_to_async
def _frame(message):
    return message.frame()
