"""The text so far of answers being written is saved while they stream, for all of them at once,
and never over an answer that has finished."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium.live import progress, runs
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


def streaming_answers(user, count):
    """`count` answers being written, each in a conversation of its own (a conversation has at
    most one answer being written at a time)."""
    return [
        Message.objects.create(
            conversation=factories.conversation(user),
            role="assistant",
            status="streaming",
            content="",
        )
        for _ in range(count)
    ]


async def settled(writer):
    while writer.writing is not None and not writer.writing.done():
        await asyncio.sleep(0.01)


async def test_the_progress_of_many_answers_is_saved_together(user):
    messages = await sync_to_async(streaming_answers)(user, 250)
    creation = await Creation.objects.acreate(
        user=user, kind="code", prompt="p", status="streaming"
    )
    writer = progress.writer()
    for number, message in enumerate(messages):
        writer.note(message, f"answer {number} so far")
    writer.note(creation, "def greet(")
    # Noted again before the write: the newest text is the one saved.
    writer.note(messages[0], "answer 0 so far, and more")
    await settled(writer)

    saved = dict(
        await sync_to_async(list)(
            Message.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", "content")
        )
    )
    assert saved[messages[0].pk] == "answer 0 so far, and more"
    assert all(saved[m.pk] == f"answer {n} so far" for n, m in enumerate(messages) if n)
    await creation.arefresh_from_db()
    assert creation.content == "def greet(" and creation.status == "streaming"
    assert writer.pending == {}


async def test_a_late_write_never_overwrites_a_finished_answer(user):
    [message] = await sync_to_async(streaming_answers)(user, 1)
    writer = progress.writer()
    writer.note(message, "Half an ans")
    await settled(writer)
    # The answer finishes; the text noted a moment before is written after it.
    message.content, message.status = "Half an answer, whole.", "complete"
    await message.asave()
    writer.note(message, "Half an answer")
    await settled(writer)
    await message.arefresh_from_db()
    assert (message.content, message.status) == ("Half an answer, whole.", "complete")


async def test_a_failed_write_is_logged_and_the_next_one_goes_ahead(user, caplog):
    [message] = await sync_to_async(streaming_answers)(user, 1)
    writer = progress.writer()
    writer.note(message, "x" * 10)
    writer.pending[(Message, "not a key")] = "cannot be written"
    await settled(writer)
    assert "could not save the progress of 2 answers" in caplog.text
    writer.note(message, "saved after all")
    await settled(writer)
    await message.arefresh_from_db()
    assert message.content == "saved after all"


async def test_a_streaming_answer_is_saved_as_it_grows(ai_settings, user, monkeypatch):
    """Through the chat socket: the database holds the text so far before the answer ends, so a
    worker that stops mid-answer leaves what was written."""
    monkeypatch.setattr(runs, "SNAPSHOT_SECONDS", 0.05)
    conversation = await Conversation.objects.acreate(user=user)
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await socket.receive_json_from()
    await socket.send_json_to(
        {"type": "send", "content": "Tell me a story [[demo:slow=0.02]] [[demo:words=60]]"}
    )
    await frames_until(socket, "snapshot")
    partial = ""
    for _ in range(100):
        answer = await Message.objects.filter(role="assistant").aget()
        partial = answer.content
        if partial:
            break
        await asyncio.sleep(0.02)
    assert answer.status == "streaming" and partial
    finished = (await frames_until(socket, "answer_finished"))[-1]["message"]
    assert finished["content"].startswith(partial) and len(finished["content"]) > len(partial)
    await idle("chat", conversation.pk)
    await answer.arefresh_from_db()
    assert answer.content == finished["content"] and answer.status == "complete"
    await socket.disconnect()
