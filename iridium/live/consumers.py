"""The websocket of one object whose answers stream (a conversation, a ticket, a creation).

Apps declare, the base does the rest. An app's consumer names its `target` (the key of its
runs and group), how to load the object for a user (the app's access rule, the same one its
views use), the object's answers, and its handlers for frames. The base:

- refuses anonymous sockets (close code 4401) and people who may not see the object (4403);
- joins the object's group, here and (with Redis) for other workers: while Redis is away a
  socket still connects and streams what this worker writes, and joins other workers' streams
  again when Redis is back (its receive from the channel layer survives Redis going away);
- sends `ready` with the answer being written, from this worker's registry or, for an answer
  written by another worker, from its progress saved in the database; answers left "being
  written" by a worker that stopped are marked interrupted first;
- takes `stop` for every app;
- validates every frame (iridium.live.protocol) and maps every domain error (a refused frame,
  a busy object, an AI refusal) to an `error` frame once, here (`FrameConsumer`, which the
  public demo's socket shares);
- handles each frame in PostHog's context, as posthog-python's Django middleware does for an
  HTTP request (Channels has no such integration): the context holds the browser's session id
  the frame carries, which the AI calls the frame starts send as `$session_id`
  (`ai.replay.current()`).
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db.models import QuerySet

from iridium import ai
from iridium.ai import feedback as ai_feedback
from iridium.infra.db import on_a_file, socket_database_call
from iridium.infra.errors import DomainError, NotAllowed

from . import fanout, protocol, runs
from .models import StreamedAnswer
from .rendering import message_html

logger = logging.getLogger(__name__)

# While the channel layer (Redis) is unreachable, a socket tries it again after this long, and
# at most this long (doubling from the first).
LAYER_RETRY_SECONDS = (0.5, 5.0)


@dataclass(frozen=True)
class Target:
    """What an app's answers are about: `prefix` names the keys ("chat" -> "chat-12"), `noun`
    the object in messages to people ("conversation")."""

    prefix: str
    noun: str

    def key(self, object_id: int) -> str:
        return f"{self.prefix}-{object_id}"


class FrameConsumer(AsyncJsonWebsocketConsumer):
    """A socket that takes frames of the protocol (iridium.live.protocol): every frame is
    validated, handed to the handler its type names, and every domain error it raises becomes
    an `error` frame, once, here (what the person typed comes back with it). The stream
    consumers below and the home page's public demo are such sockets."""

    # Frame type -> name of the method taking the validated frame.
    handlers: ClassVar[dict[str, str]] = {}

    @classmethod
    async def encode_json(cls, content) -> str:
        return protocol.encode(content)

    # Messages whose handlers touch no database (see dispatch).
    without_database: ClassVar[frozenset[str]] = frozenset()

    async def dispatch(self, message):
        """Channels runs close_old_connections() in asgiref's database thread before each
        message a socket takes, so that a connection a server ended is not used again: a thread
        hop each time, all through one thread. Skipped for messages that touch no database
        (`without_database`: a token relayed by another worker is one), and where the database
        is a file (SQLite, the embedded set-up): no server ends its connection, and opening it
        again (its PRAGMAs) was a tenth of an answer's start, so it is kept, as answers keep it
        (iridium.infra.db)."""
        if message["type"] not in self.without_database and not on_a_file():
            return await super().dispatch(message)
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        """Channels' own, which closes the connection after `disconnect` as `dispatch` does
        before each message: kept where the database is a file."""
        if not on_a_file():
            return await super().websocket_disconnect(message)
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        frame = {}
        try:
            frame = protocol.parse(raw, max_chars=settings.WEBSOCKET_MAX_FRAME_CHARS)
            await self.handle(frame)
        except DomainError as error:
            extra = dict(error.extra)
            content = frame.get("content")
            if "text" not in extra and isinstance(content, str) and content:
                extra["text"] = content  # whatever was refused, what was typed comes back
            await self.send_json(protocol.error(error.code, error.message, **extra))
        except Exception:
            # Not the person's fault (the database went away a moment, say): the socket stays
            # open and what they typed comes back.
            logger.exception("a %s frame on %s failed", frame.get("type"), self.log_label())
            content = frame.get("content")
            given_back = {"text": content} if isinstance(content, str) else {}
            await self.send_json(protocol.error("internal", protocol.INTERNAL, **given_back))

    async def handle(self, frame: dict) -> None:
        await self.handler(frame["type"])(frame)

    def handler(self, frame_type: str):
        name = self.handlers.get(frame_type)
        if name is None:
            raise protocol.UnknownType(protocol.UNKNOWN_TYPE.format(type=frame_type))
        return getattr(self, name)

    def log_label(self) -> str:
        """The socket, in the log."""
        return type(self).__name__


class StreamConsumer(FrameConsumer):
    target: ClassVar[Target]
    without_database = frozenset({"stream.frame"})  # a frame relayed by another worker
    # Frame type -> name of the method taking the validated frame (stop and feedback are the
    # base's).
    handlers: ClassVar[dict[str, str]] = {}

    async def load(self, user, object_id: int):
        """The object if `user` may watch it, else None (the app's access rule)."""
        raise NotImplementedError

    def answers(self) -> QuerySet:
        """The object's AI answers."""
        raise NotImplementedError

    def answers_for(self) -> int | None:
        """Whose the object's answers are (who may rate them): the object's owner."""
        return self.object.user_id

    async def ready_state(self) -> dict:
        """More for the `ready` frame (the object's state)."""
        return {}

    async def after_ready(self) -> None:
        """Called once the socket is ready."""

    def log_label(self) -> str:
        return getattr(self, "key", None) or super().log_label()

    # --- Connection -------------------------------------------------------------------------

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.object_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.object = await self.load(user, self.object_id)
        if self.object is None:
            await self.close(code=protocol.CLOSE_FORBIDDEN)
            return
        self.key = self.target.key(self.object_id)
        # Frames of the answer in progress start coming now; they wait until the ready frame
        # (which carries the text so far) is out, so that ready is always the first frame.
        self._held = []
        fanout.subscribe(self.key, self)
        if not fanout.single_process():  # other workers reach it through the channel layer
            self.joined = await self._join_group()
        await self.accept()
        ready = protocol.ready(await self._in_progress(), **(await self.ready_state()))
        held, self._held = self._held, None
        await super().send_json(ready)
        for frame in held:  # deltas carry their offset: the page skips what ready had
            await super().send_json(frame)
        await self.after_ready()

    async def send_json(self, content, close=False):
        held = getattr(self, "_held", None)
        if held is not None:
            held.append(content)
            return
        await super().send_json(content, close=close)

    async def send_encoded(self, frame: dict, text: str) -> None:
        """`frame`, already encoded as `text` (once for all of its group's sockets), straight
        to the socket: a stream's tokens skip Channels' layers of `send_json` (a frame held
        until `ready` has gone is kept as it is)."""
        held = getattr(self, "_held", None)
        if held is not None:
            held.append(frame)
            return
        await self.base_send({"type": "websocket.send", "text": text})

    async def _in_progress(self) -> dict | None:
        """The answer being written (its text so far, its message rendered), if any."""
        return await socket_database_call(self._answer_in_progress)

    def _answer_in_progress(self) -> dict | None:
        answers = self.answers()
        run = runs.running(self.key)
        if run is not None:
            answer = answers.filter(pk=run.message_id).first()
            text = run.text
        else:
            # Perhaps being written by another worker (its progress is saved every second), or
            # left by a worker that stopped: then it is marked interrupted, and none is.
            answer = answers.filter(status=StreamedAnswer.Status.STREAMING).first()
            left = answer and answers.model.mark_interrupted(
                answers.filter(pk=answer.pk), key=self.key
            )
            if left:
                answer = None
            text = answer.content if answer else ""
        if answer is None:
            return None
        answer.content = text
        return {"message_id": answer.pk, "text": text, "html": message_html(answer)}

    async def disconnect(self, code):
        # The answer in progress goes on: it belongs to the object, not to this socket.
        if getattr(self, "key", None):
            fanout.unsubscribe(self.key, self)
            if not fanout.single_process():
                try:
                    async with asyncio.timeout(settings.REDIS_TIMEOUT):
                        await self.channel_layer.group_discard(self.key, self.channel_name)
                except Exception as error:  # Redis away: the membership expires by itself
                    fanout.warn_now_and_then(f"could not leave a group: {error!r}")

    # --- The channel layer (frames relayed by other workers) ----------------------------------

    async def _join_group(self) -> bool:
        """Join the object's group in the channel layer, waiting at most REDIS_TIMEOUT."""
        try:
            async with asyncio.timeout(settings.REDIS_TIMEOUT):
                await self.channel_layer.group_add(self.key, self.channel_name)
            return True
        except Exception as error:  # Redis unreachable: this worker's streams still reach it
            fanout.warn_now_and_then(f"a socket could not join its group: {error!r}")
            return False

    # Channels assigns `channel_receive` (the layer's receive for this socket's channel) and
    # waits on it beside the socket's own messages; an error from it ends the consumer, and so
    # closed every socket of a worker while Redis was away. The socket waits on
    # `_receive_from_layer` instead, which outlasts Redis going away and coming back.
    @property
    def channel_receive(self):
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, layer_receive):
        self._layer_receive = layer_receive

    async def _receive_from_layer(self):
        delay = LAYER_RETRY_SECONDS[0]
        while True:
            if getattr(self, "joined", True) is False and getattr(self, "key", None):
                self.joined = await self._join_group()  # Redis is back: join again
            try:
                return await self._layer_receive()
            except Exception as error:
                fanout.warn_now_and_then(f"a socket cannot hear other workers: {error!r}")
                if getattr(self, "key", None):
                    self.joined = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAYER_RETRY_SECONDS[1])

    async def stream_frame(self, event):
        await self.send_json(event["frame"])

    # --- Frames from the page ---------------------------------------------------------------

    async def handle(self, frame: dict) -> None:
        # In PostHog's context: the AI calls the frame starts send the page's replay session.
        with ai.replay.session_context(protocol.replay_session_id(frame)):
            await super().handle(frame)

    def handler(self, frame_type: str):
        if frame_type == protocol.STOP:
            return self.on_stop
        if frame_type == protocol.FEEDBACK:
            return self.on_feedback
        return super().handler(frame_type)

    async def on_feedback(self, frame):
        """Thumbs up or down (and a comment) on a finished answer, by the person it was for."""
        message_id, rating, comment = protocol.feedback(frame)
        await socket_database_call(self._give_feedback, message_id, rating, comment)
        await self.send_json(protocol.feedback_saved(message_id, rating, comment))

    def _give_feedback(self, message_id: int, rating: str, comment: str) -> None:
        if self.answers_for() != self.user.pk:
            raise NotAllowed(protocol.NOT_YOUR_ANSWER)
        answer = self.answers().filter(pk=message_id, status=StreamedAnswer.Status.COMPLETE).first()
        if answer is None:
            raise protocol.InvalidFeedback(protocol.NO_SUCH_ANSWER)
        ai_feedback.give(
            user=self.user,
            trace_id=answer.trace_id,
            session_id=answer.ai_session_id,
            feature=answer.ai_feature,
            model=answer.model,
            rating=rating,
            comment=comment,
        )

    async def on_stop(self, frame):
        streaming = self.answers().filter(status=StreamedAnswer.Status.STREAMING)
        await runs.stop(self.key, [pk async for pk in streaming.values_list("pk", flat=True)])
