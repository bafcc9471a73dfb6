"""Websockets of the full ASGI application (origin check, session auth, routing) in tests:
open one for a person and an object, read frames up to one of a type, wait for an answer to end.

A socket is named by its kind, as the pages name their objects: "chat" (a conversation),
"ticket" (a support ticket), "creation" (a generated snippet or text).
"""

import asyncio

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chat import answers as chat_answers
from codegen import answers as codegen_answers
from iridium.asgi import application
from iridium.live import runs
from support import answers as support_answers

ORIGIN = b"http://127.0.0.1"

# kind -> (the socket's path, the key of the object's answers in iridium.live.runs)
SOCKETS = {
    "chat": ("/ws/chat/{}/", chat_answers.run_key),
    "ticket": ("/ws/support/tickets/{}/", support_answers.run_key),
    "creation": ("/ws/generate/{}/", codegen_answers.run_key),
}


def session_cookie(user) -> str:
    """The Cookie header of a logged-in session of `user`."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def open_socket(user, kind: str, object_id: int, *, origin: bytes = ORIGIN, cookie=None):
    """Connect to the socket of object `object_id` of `kind` as `user` (None: anonymous), with
    a session of its own unless `cookie` (session_cookie's) is given. Returns the communicator,
    whether it was accepted, and the close code if not."""
    path, _ = SOCKETS[kind]
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = cookie or await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path.format(object_id), headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def frames_until(communicator, frame_type: str, timeout: float = 10) -> list[dict]:
    """Every frame received up to and including the first of `frame_type`."""
    received = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        received.append(frame)
        if frame["type"] == frame_type:
            return received


async def idle(kind: str, object_id: int, timeout: float = 10) -> None:
    """Wait until the answer being written for the object has ended (it outlives sockets)."""
    _, run_key = SOCKETS[kind]
    deadline = asyncio.get_running_loop().time() + timeout
    while runs.running(run_key(object_id)):
        assert asyncio.get_running_loop().time() < deadline, "the answer never ended"
        await asyncio.sleep(0.02)
