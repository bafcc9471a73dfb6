"""The chat websocket over the full ASGI application (origin check, session auth, routing),
with answers from the demo provider through the real openai SDK."""

import asyncio
import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from chat.models import Conversation, Message
from iridium.ai import errors
from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from iridium.live import protocol
from iridium.live.models import interrupted_after
from support.models import Article, Ticket
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket, session_cookie


@pytest.fixture
def conversation(user):
    return factories.conversation(user)


@pytest.fixture
async def socket(ai_settings, user, conversation):
    communicator, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    ready = await communicator.receive_json_from()
    assert ready == {"type": "ready", "in_progress": None}
    yield communicator
    await idle("chat", conversation.pk)
    await communicator.disconnect()


def messages_of(conversation):
    return list(conversation.messages.values_list("role", "status", "content"))


# --- Who may connect --------------------------------------------------------------------------


async def test_anonymous_sockets_are_refused(ai_settings, conversation):
    _, connected, code = await open_socket(None, "chat", conversation.pk)
    assert not connected and code == protocol.CLOSE_UNAUTHENTICATED


async def test_only_the_owner_may_connect(ai_settings, conversation, make_user):
    stranger = await sync_to_async(make_user)("sam")
    _, connected, code = await open_socket(stranger, "chat", conversation.pk)
    assert not connected and code == protocol.CLOSE_FORBIDDEN


async def test_a_missing_conversation_is_refused(ai_settings, user):
    _, connected, code = await open_socket(user, "chat", 999_999)
    assert not connected and code == protocol.CLOSE_FORBIDDEN


async def test_another_origin_is_refused(ai_settings, user, conversation):
    _, connected, _ = await open_socket(
        user, "chat", conversation.pk, origin=b"https://evil.example"
    )
    assert not connected


# --- Bad frames change nothing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "malformed"),
        ("[1, 2]", "malformed"),
        ('{"content": "no type"}', "malformed"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "send", "content": "   "}', "empty"),
        ('{"type": "send", "content": 42}', "invalid_text"),
    ],
)
async def test_bad_frames_get_an_error_and_change_nothing(socket, conversation, raw, code):
    await socket.send_to(text_data=raw)
    frame = await socket.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == code and frame["message"]
    assert await sync_to_async(messages_of)(conversation) == []


async def test_oversize_messages_are_refused(socket, conversation):
    content = "x" * (settings.CHAT_MAX_MESSAGE_CHARS + 1)
    await socket.send_json_to({"type": "send", "content": content})
    frame = await socket.receive_json_from()
    assert frame["code"] == "too_long" and str(settings.CHAT_MAX_MESSAGE_CHARS) in frame["message"]
    await socket.send_to(text_data="x" * (settings.WEBSOCKET_MAX_FRAME_CHARS + 1))
    assert (await socket.receive_json_from())["code"] == "too_large"
    assert await sync_to_async(messages_of)(conversation) == []


# --- Answers ----------------------------------------------------------------------------------


async def test_an_answer_streams_and_is_saved(socket, conversation, user):
    await socket.send_json_to({"type": "send", "content": "What is a websocket?"})
    frames = await frames_until(socket, "answer_finished")
    types = [f["type"] for f in frames]
    assert types[0] == "user_message" and types[1] == "answer_started"
    assert frames[0]["title"] == "What is a websocket?"  # the page's heading follows
    deltas = [f for f in frames if f["type"] == "delta"]
    assert len(deltas) > 3
    streamed = "".join(d["text"] for d in deltas)
    assert [d["offset"] for d in deltas] == [
        sum(len(x["text"]) for x in deltas[:i]) for i in range(len(deltas))
    ]
    finished = frames[-1]["message"]
    assert finished["content"] == streamed and finished["status"] == "complete"
    # The server's rendering of the finished message, which the page swaps in.
    assert '<div class="message-body answer-body markdown"><p>Demo answer' in frames[-1]["html"]
    assert f'data-message-id="{finished["id"]}"' in frames[-1]["html"]
    assert finished["model"] == "gpt-4o-mini" and finished["output_tokens"] > 0
    assert Decimal(finished["cost_usd"]) > 0
    saved = await sync_to_async(messages_of)(conversation)
    assert saved == [
        ("user", "complete", "What is a websocket?"),
        ("assistant", "complete", streamed),
    ]
    await conversation.arefresh_from_db()
    assert conversation.title == "What is a websocket?"


async def test_each_answer_is_a_trace_in_the_conversations_session(socket, conversation, user):
    for text in ("first question", "How do I reset my password?"):
        await socket.send_json_to({"type": "send", "content": text})
        await frames_until(socket, "answer_finished")
        await idle("chat", conversation.pk)
    await asyncio.to_thread(recorder.flush)
    rows = [g async for g in Generation.objects.order_by("created_at", "step")]
    assert len(rows) == 3  # one, then two steps around the knowledge-base search
    answers = [m async for m in conversation.messages.filter(role="assistant").order_by("pk")]
    assert [row.trace_id for row in rows] == [
        f"conversation-{conversation.pk}-{answers[0].pk}",
        *[f"conversation-{conversation.pk}-{answers[1].pk}"] * 2,
    ]
    for row in rows:
        assert row.session_id == f"conversation-{conversation.pk}"
        assert row.feature == "chat"
        assert row.properties["conversationId"] == conversation.pk
        assert row.properties["hasTools"] is True
        assert row.properties["plan"] == "free"
    assert [r.properties["messageCount"] for r in rows] == [1, 3, 3]


async def test_stop_keeps_the_partial_answer(socket, conversation):
    await socket.send_json_to(
        {"type": "send", "content": "A long story [[demo:slow=0.05]] [[demo:words=400]]"}
    )
    await frames_until(socket, "delta")
    await socket.send_json_to({"type": "stop"})
    frames = await frames_until(socket, "answer_finished")
    finished = frames[-1]["message"]
    assert finished["status"] == "stopped" and finished["content"]
    await idle("chat", conversation.pk)
    answer = await conversation.messages.aget(role="assistant")
    assert answer.status == "stopped" and answer.content == finished["content"]


async def test_closing_the_socket_does_not_stop_the_answer(ai_settings, user, conversation):
    first, _, _ = await open_socket(user, "chat", conversation.pk)
    await first.receive_json_from()
    await first.send_json_to({"type": "send", "content": "Tell me more [[demo:slow=0.03]]"})
    await frames_until(first, "delta")
    await first.disconnect()

    second, _, _ = await open_socket(user, "chat", conversation.pk)
    ready = await second.receive_json_from()
    assert ready["in_progress"]["text"]  # the answer in progress, so far
    frames = await frames_until(second, "answer_finished")
    await idle("chat", conversation.pk)
    answer = await conversation.messages.aget(role="assistant")
    assert answer.status == "complete" and answer.content == frames[-1]["message"]["content"]
    assert answer.content.startswith(ready["in_progress"]["text"])
    await second.disconnect()

    third, _, _ = await open_socket(user, "chat", conversation.pk)
    assert (await third.receive_json_from())["in_progress"] is None
    await third.disconnect()


async def test_ready_is_the_first_frame_while_an_answer_streams(ai_settings, user, conversation):
    """Sockets that open while tokens flow get `ready` first, then the tokens, none lost: the
    text so far in ready and the deltas after it join without a gap."""
    first, _, _ = await open_socket(user, "chat", conversation.pk)
    await first.receive_json_from()
    await first.send_json_to({"type": "send", "content": "Go [[demo:words=5000]]"})
    await frames_until(first, "delta")
    for _ in range(30):
        tab, connected, _ = await open_socket(user, "chat", conversation.pk)
        assert connected
        ready = await tab.receive_json_from()
        assert ready["type"] == "ready"
        text = ready["in_progress"]["text"] if ready["in_progress"] else None
        if text is not None:
            later = await tab.receive_json_from()
            if later["type"] == "delta":
                assert later["offset"] <= len(text)  # overlaps or follows: never a gap
        await tab.disconnect()
    await idle("chat", conversation.pk)
    await first.disconnect()


async def test_two_tabs_see_the_same_stream(socket, user, conversation):
    other, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await other.receive_json_from()
    await socket.send_json_to({"type": "send", "content": "Hello both"})
    mine = await frames_until(socket, "answer_finished")
    theirs = await frames_until(other, "answer_finished")
    assert mine[-1]["message"] == theirs[-1]["message"]
    assert [f["type"] for f in theirs][:2] == ["user_message", "answer_started"]
    await other.disconnect()


async def test_a_second_message_while_answering_is_refused_and_kept(socket, conversation):
    await socket.send_json_to(
        {"type": "send", "content": "Slowly [[demo:slow=0.05]] [[demo:words=400]]"}
    )
    await frames_until(socket, "delta")
    await socket.send_json_to({"type": "send", "content": "Impatient"})
    frames = await frames_until(socket, "error")
    assert frames[-1]["code"] == "busy" and frames[-1]["text"] == "Impatient"
    await socket.send_json_to({"type": "stop"})
    await frames_until(socket, "answer_finished")


async def test_provider_errors_show_with_retry(socket, conversation):
    await socket.send_json_to({"type": "send", "content": "Break [[demo:fault=500]]"})
    frames = await frames_until(socket, "answer_finished")
    failed = frames[-1]["message"]
    assert failed["status"] == "error" and failed["error"] == errors.PROVIDER_FAILED
    await idle("chat", conversation.pk)
    await socket.send_json_to({"type": "retry"})
    frames = await frames_until(socket, "answer_finished")
    # The retry asks again; the demo provider fails the same request again, deterministically.
    assert frames[-1]["message"]["status"] == "error"
    await idle("chat", conversation.pk)
    latest = conversation.messages.filter(version=Message.Version.LATEST)
    statuses = await sync_to_async(messages_of)(conversation)
    assert [s[:2] for s in statuses] == [
        ("user", "complete"), ("assistant", "error"), ("assistant", "error"),
    ]  # fmt: skip
    # The failed answer retried is kept, replaced (not shown, not a version to flip to).
    assert [m.role async for m in latest] == ["user", "assistant"]


async def test_regenerate_replaces_the_last_answer(socket, conversation):
    await socket.send_json_to({"type": "send", "content": "Hi"})
    first = (await frames_until(socket, "answer_finished"))[-1]["message"]
    await idle("chat", conversation.pk)
    await socket.send_json_to({"type": "regenerate"})
    second = (await frames_until(socket, "answer_finished"))[-1]["message"]
    assert second["id"] != first["id"] and second["content"] == first["content"]
    await idle("chat", conversation.pk)
    # The first answer is kept as an earlier version of the turn (tests/test_chat_versions.py).
    latest = conversation.messages.filter(version=Message.Version.LATEST)
    assert [m.pk async for m in latest.filter(role="assistant")] == [second["id"]]


async def test_limits_are_said_plainly_and_the_text_is_given_back(socket, conversation, plans):
    free = plans["free"]
    free.daily_request_limit = 0
    await free.asave()
    await socket.send_json_to({"type": "send", "content": "Anyone there?", "client_id": "tab-1"})
    frames = await frames_until(socket, "refused")
    refused = frames[-1]
    assert refused["message"] == errors.DAILY_LIMIT_REACHED.format(limit=0)
    assert refused["text"] == "Anyone there?" and refused["client_id"] == "tab-1"
    assert refused["title"] == "New conversation"  # the refused text does not name it either
    assert refused["more_url"] == "/plans/"  # where the plans are compared
    await idle("chat", conversation.pk)
    assert await sync_to_async(messages_of)(conversation) == []
    await conversation.arefresh_from_db()
    assert conversation.title == "New conversation"


async def ask_once(user, conversation, text, cookie):
    """A socket opened, one answer written over it to its end, the socket closed."""
    communicator, connected, _ = await open_socket(user, "chat", conversation.pk, cookie=cookie)
    assert connected
    assert (await communicator.receive_json_from())["type"] == "ready"
    await communicator.send_json_to({"type": "send", "content": text})
    await frames_until(communicator, "answer_finished")
    await idle("chat", conversation.pk)
    await communicator.disconnect()


async def test_a_socket_keeps_the_database_connection_where_the_database_is_a_file(
    ai_settings, user, conversation
):
    """Channels closes the connection of asgiref's database thread around each message and
    each read of the socket's user. On SQLite (a file: no server ends its connections) the
    sockets keep it, so a second socket's connection and answer open none; on PostgreSQL it
    is handed back to the pool at each message and taken again."""
    from django.db import connection
    from django.db.backends.signals import connection_created

    # Signed in before (the test client's log-in closes the thread's connection, as a request
    # does).
    cookie = await sync_to_async(session_cookie)(user)
    await ask_once(user, conversation, "First question", cookie)
    database_thread = await sync_to_async(threading.get_ident)()
    opened = []

    def count(sender, connection, **kwargs):
        if threading.get_ident() == database_thread:
            opened.append(connection.alias)

    connection_created.connect(count)
    try:
        await ask_once(user, conversation, "Second question", cookie)
    finally:
        connection_created.disconnect(count)
    if connection.vendor == "sqlite":
        assert opened == []
    else:
        assert len(opened) >= 1, opened


# --- Tools ------------------------------------------------------------------------------------


async def test_the_assistant_searches_the_knowledge_base(socket, conversation):
    await Article.objects.acreate(
        title="Resetting your password",
        body="Open Settings, then Security, then Reset password.",
        tags="password,account",
        published=True,
    )
    await Article.objects.acreate(title="Draft about passwords", body="secret", published=False)
    await socket.send_json_to({"type": "send", "content": "How do I reset my password?"})
    frames = await frames_until(socket, "answer_finished")
    [tool] = [f for f in frames if f["type"] == "tool"]
    assert tool["name"] == "search_knowledge_base" and tool["results"] == 1
    answer = frames[-1]["message"]
    assert "Resetting your password" in answer["content"]
    assert "Draft about passwords" not in answer["content"]
    article = await Article.objects.aget(title="Resetting your password")
    source = {"title": "Resetting your password", "url": f"/support/articles/{article.pk}/"}
    assert answer["tools"] == [
        {"name": "search_knowledge_base", "ok": True, "results": 1, "sources": [source]}
    ]
    # The sources show as links under the answer, in the frame and on the page after a reload.
    link = f'<a href="/support/articles/{article.pk}/">Resetting your password</a>'
    assert link in tool["html"] and link in frames[-1]["html"]


async def test_the_assistant_files_a_ticket_for_the_chatting_user_only(
    socket, conversation, user, make_user
):
    other = await sync_to_async(make_user)("victim")
    arguments = json.dumps({"title": "Refund", "description": "Please", "user": other.pk})
    await socket.send_json_to(
        {"type": "send", "content": f"[[demo:tool=create_support_ticket {arguments}]]"}
    )
    frames = await frames_until(socket, "answer_finished")
    [tool] = [f for f in frames if f["type"] == "tool"]
    ticket = await Ticket.objects.aget()
    assert ticket.user_id == user.pk and ticket.source == "chat" and ticket.title == "Refund"
    assert tool["ticket"] == {"id": ticket.pk, "url": f"/support/tickets/{ticket.pk}/"}
    assert not await Ticket.objects.filter(user=other).aexists()


async def test_a_ticket_without_a_description_is_not_filed(socket, conversation):
    arguments = json.dumps({"title": "Only a title"})
    await socket.send_json_to(
        {"type": "send", "content": f"[[demo:tool=create_support_ticket {arguments}]]"}
    )
    frames = await frames_until(socket, "answer_finished")
    [tool] = [f for f in frames if f["type"] == "tool"]
    assert tool["ok"] is False
    assert not await Ticket.objects.aexists()


async def test_the_assistant_uses_at_most_five_steps(socket, conversation):
    await socket.send_json_to({"type": "send", "content": "Search forever [[demo:loop]]"})
    frames = await frames_until(socket, "answer_finished")
    assert len([f for f in frames if f["type"] == "tool"]) == 4
    assert frames[-1]["message"]["status"] == "complete"
    await idle("chat", conversation.pk)
    await asyncio.to_thread(recorder.flush)
    assert await Generation.objects.acount() == 5


async def test_an_answer_left_by_a_stopped_worker_is_marked_interrupted(ai_settings, user):
    """A worker that stopped mid-answer leaves it "being written"; once it has been silent for a
    while, opening the conversation marks it failed, with a Retry, and keeps what was saved."""
    from django.utils import timezone

    conversation = await Conversation.objects.acreate(user=user)
    await Message.objects.acreate(conversation=conversation, role="user", content="Hi")
    answer = await Message.objects.acreate(
        conversation=conversation, role="assistant", status="streaming", content="Half an ans"
    )
    stale = timezone.now() - interrupted_after() - timedelta(seconds=1)
    await Message.objects.filter(pk=answer.pk).aupdate(updated_at=stale)
    communicator, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    ready = await communicator.receive_json_from()
    assert ready["in_progress"] is None
    await answer.arefresh_from_db()
    assert answer.status == "error" and answer.error == Message.INTERRUPTED
    assert answer.content == "Half an ans"
    await communicator.send_json_to({"type": "retry"})
    frames = await frames_until(communicator, "answer_finished")
    assert frames[-1]["message"]["status"] == "complete"
    await idle("chat", conversation.pk)
    await communicator.disconnect()


async def test_a_send_follows_the_one_rule_for_interrupted_answers(ai_settings, user):
    """Whether a silent answer is still being written (the conversation is busy) or was left by a
    stopped worker is StreamedAnswer's rule alone: a send follows it, whatever it says."""
    from django.utils import timezone

    from chat import answers
    from iridium.infra.errors import Busy

    conversation = await Conversation.objects.acreate(user=user)
    await Message.objects.acreate(conversation=conversation, role="user", content="Hi")
    answer = await Message.objects.acreate(
        conversation=conversation, role="assistant", status="streaming", content="Half an ans"
    )
    silent = timezone.now() - timedelta(seconds=30)
    await Message.objects.filter(pk=answer.pk).aupdate(updated_at=silent)

    ai_settings.ANSWER_STALE_SECONDS = 300
    with pytest.raises(Busy) as refused:
        await answers.send(conversation=conversation, user=user, content="Next")
    assert refused.value.code == "busy" and refused.value.extra == {"text": "Next"}
    await answer.arefresh_from_db()
    assert answer.status == "streaming"

    ai_settings.ANSWER_STALE_SECONDS = 20
    await answers.send(conversation=conversation, user=user, content="Next")
    await idle("chat", conversation.pk)
    await answer.arefresh_from_db()
    assert answer.status == "error" and answer.error == Message.INTERRUPTED
    assert await conversation.messages.filter(role="user").acount() == 2
