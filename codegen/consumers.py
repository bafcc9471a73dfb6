from django.utils import timezone

from iridium.core import streams
from iridium.core.consumers import StreamConsumer

from . import answers
from .models import Creation


class CreationConsumer(StreamConsumer):
    """ws/generate/<pk>/: the creation's author only. Frames: stop, retry."""

    noun = "creation"

    async def load_object(self, user, object_id):
        return await Creation.objects.filter(pk=object_id, user=user).afirst()

    def group_name(self):
        return answers.group_for(self.object_id)

    def run_key(self):
        return answers.run_key(self.object_id)

    async def handlers(self):
        return {"stop": self.on_stop, "retry": self.on_retry}

    async def on_ready(self):
        in_progress = self.answer_in_progress()
        streaming = self.object.status == Creation.Status.STREAMING
        stale = self.object.updated_at < timezone.now() - answers.INTERRUPTED_AFTER
        if in_progress is None and streaming and stale:  # its worker stopped mid-way
            self.object.status, self.object.error = Creation.Status.ERROR, answers.INTERRUPTED
            await self.object.asave(update_fields=["status", "error"])
        return {"type": "ready", "creation": self.object_id, "in_progress": in_progress}

    async def on_stop(self, frame):
        await streams.stop(self.run_key())

    async def on_retry(self, frame):
        if self.object.status != Creation.Status.ERROR:
            return
        self.object.status = Creation.Status.STREAMING
        self.object.content = self.object.html = self.object.error = ""
        await self.object.asave()
        await answers.start(self.object, self.user)
