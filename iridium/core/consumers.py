"""The websocket side of streamed answers, shared by chat and support.

A `StreamConsumer` serves one object (a conversation, a ticket): it refuses anonymous sockets and
sockets of people who may not see the object, joins the object's group, relays the group's
frames, and validates every frame from the browser. Malformed JSON, unknown types, oversize
messages and frames about another object get an `error` frame and change nothing.
"""

import json

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import streams

# Close codes (4000-4999 are the application's own).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

MALFORMED = "That message was not valid JSON."
NOT_AN_OBJECT = "A message must be a JSON object with a type."
UNKNOWN_TYPE = "Unknown message type: {type!r}."
WRONG_OBJECT = "That message is for another {noun}."
TOO_LONG = "That message is too long ({length} characters; the limit is {limit})."
FRAME_TOO_LARGE = "That message is too large."


class StreamConsumer(AsyncJsonWebsocketConsumer):
    noun = "object"  # for messages: "conversation", "ticket"
    object_kwarg = "pk"  # the URL route's keyword for the object's id

    async def load_object(self, user, object_id):
        """Return the object if `user` may watch it, else None."""
        raise NotImplementedError

    def group_name(self) -> str:
        raise NotImplementedError

    def run_key(self) -> str:
        """The key of the object's answer in iridium.core.streams."""
        raise NotImplementedError

    def answer_in_progress(self) -> dict | None:
        """The answer this worker is writing for the object, as far as it has got."""
        run = streams.running(self.run_key())
        return {"message_id": run.message_id, "text": run.text} if run else None

    async def handlers(self) -> dict:
        """Frame type -> coroutine taking the validated frame."""
        raise NotImplementedError

    async def on_ready(self) -> dict:
        """The first frame a new socket receives (state of the object, answer in progress)."""
        return {"type": "ready"}

    # --- Connection -----------------------------------------------------------------------

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.object_id = int(self.scope["url_route"]["kwargs"][self.object_kwarg])
        self.object = await self.load_object(user, self.object_id)
        if self.object is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = self.group_name()
        streams.subscribe(self.group, self)
        if not streams.single_process():  # other workers reach it through the channel layer
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(await self.on_ready())

    async def disconnect(self, code):
        # The answer in progress goes on: it belongs to the object, not to this socket.
        if getattr(self, "group", None):
            streams.unsubscribe(self.group, self)
            if not streams.single_process():
                await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message):
        # Channels runs close_old_connections() in the database thread before every handler:
        # a thread hop per token per socket, all through one thread. Relayed frames touch no
        # database, so they skip it.
        if message["type"] == "stream.frame":
            await self.stream_frame(message)
            return
        await super().dispatch(message)

    async def stream_frame(self, event):
        await self.send_json(event["frame"])

    # --- Frames from the browser ----------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw) > settings.WEBSOCKET_MAX_FRAME_CHARS:
            await self.send_error("too_large", FRAME_TOO_LARGE)
            return
        try:
            frame = json.loads(raw)
        except ValueError:
            await self.send_error("malformed", MALFORMED)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_error("malformed", NOT_AN_OBJECT)
            return
        await self.receive_json(frame)

    async def receive_json(self, content, **kwargs):
        handler = (await self.handlers()).get(content["type"])
        if handler is None:
            await self.send_error("unknown_type", UNKNOWN_TYPE.format(type=content["type"]))
            return
        target = content.get(self.noun)
        if target is not None and str(target) != str(self.object_id):
            await self.send_error("wrong_object", WRONG_OBJECT.format(noun=self.noun))
            return
        await handler(content)

    async def send_error(self, code: str, message: str, **extra):
        await self.send_json({"type": "error", "code": code, "message": message, **extra})
