from asgiref.sync import sync_to_async

from iridium.live import protocol
from iridium.live.consumers import StreamConsumer

from . import access, answers
from .models import Creation


class CreationConsumer(StreamConsumer):
    """ws/generate/<pk>/: the creation's author only. Frames: stop, retry."""

    target = answers.TARGET
    handlers = {protocol.RETRY: "on_retry"}

    async def load(self, user, object_id):
        return await access.creations_for(user).filter(pk=object_id).afirst()

    def answers(self):
        return Creation.objects.filter(pk=self.object_id)

    async def on_retry(self, frame):
        start = await sync_to_async(answers.written_again)(self.object)
        if start is not None:
            answers.start(start, self.user)
