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
        await self.object.arefresh_from_db()
        if self.object.status != Creation.Status.ERROR:
            return
        self.object.status = Creation.Status.STREAMING
        self.object.content = self.object.html = self.object.error = ""
        await self.object.asave()
        answers.start(self.object, self.user)
