"""Answer versions (Regenerate keeps the earlier answers) and editing a sent question, over the
chat websocket of the full ASGI application, with answers from the demo provider."""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat import answers
from chat.models import Conversation, Message
from iridium.ai import errors
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

LATEST, EARLIER, REPLACED = Message.Version


@pytest.fixture
def conversation(user):
    return factories.conversation(user)


@pytest.fixture
async def socket(ai_settings, user, conversation):
    communicator, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await communicator.receive_json_from()  # ready
    yield communicator
    await idle("chat", conversation.pk)
    await communicator.disconnect()


async def ask(socket, conversation, frame) -> list[dict]:
    """Send `frame`, and the frames up to the end of the answer it starts."""
    await socket.send_json_to(frame)
    frames = await frames_until(socket, "answer_finished")
    await idle("chat", conversation.pk)
    return frames


def rows(conversation) -> list[tuple[str, str, str]]:
    """(role, version, content) of every message kept, oldest first."""
    return list(
        conversation.messages.order_by("created_at", "pk").values_list("role", "version", "content")
    )


def history(conversation) -> list[tuple[str, str]]:
    """What the model would be sent for a next answer (the system prompt left out)."""
    answer = Message(conversation=conversation, role="assistant")
    return [(m["role"], m["content"]) for m in answers._history(conversation, answer)[1:]]


def data_download(user) -> dict:
    client = Client()
    client.force_login(user)
    return client.get("/accounts/me/data.json").json()


def shown_on_the_page(user, conversation) -> tuple[str, list]:
    client = Client()
    client.force_login(user)
    response = client.get(f"/chat/{conversation.pk}/")
    assert response.status_code == 200
    return response.content.decode(), response.context["chat_messages"]


# --- Regenerate keeps versions ----------------------------------------------------------------


async def test_regenerate_keeps_the_earlier_answers_as_versions(socket, conversation, user):
    first = (await ask(socket, conversation, {"type": "send", "content": "Hi"}))[-1]
    second = await ask(socket, conversation, {"type": "regenerate"})
    assert "2/2" in second[0]["html"]  # answer_started: the newest of two versions
    third = (await ask(socket, conversation, {"type": "regenerate"}))[-1]
    assert f'data-turn="{first["message"]["id"]}"' in third["html"]
    assert "3/3" in third["html"]

    kept = await sync_to_async(rows)(conversation)
    assert [(role, version) for role, version, _ in kept] == [
        ("user", LATEST), ("assistant", EARLIER), ("assistant", EARLIER), ("assistant", LATEST),
    ]  # fmt: skip
    # Each regenerated answer was asked with the same history: the earlier versions not in it.
    tokens = await sync_to_async(list)(
        conversation.messages.filter(role="assistant").values_list("input_tokens", flat=True)
    )
    assert len(set(tokens)) == 1, tokens

    # A reload shows the three versions, the newest one, with its < 3/3 >.
    html, shown = await sync_to_async(shown_on_the_page)(user, conversation)
    assert [(m.role, m.version_number, m.version_count) for m in shown] == [
        ("user", 1, 1), ("assistant", 1, 3), ("assistant", 2, 3), ("assistant", 3, 3),
    ]  # fmt: skip
    assert html.count('data-role="assistant"') == 3
    assert html.count(f'data-turn="{first["message"]["id"]}" hidden>') == 2
    assert ">3/3<" in html and 'aria-label="Previous version"' in html


async def test_the_history_holds_the_latest_version_of_each_turn(socket, conversation):
    await ask(socket, conversation, {"type": "send", "content": "One"})
    await ask(socket, conversation, {"type": "regenerate"})
    await ask(socket, conversation, {"type": "send", "content": "Two"})
    latest = await sync_to_async(list)(
        conversation.messages.filter(version=LATEST).order_by("created_at", "pk")
    )
    assert await sync_to_async(history)(conversation) == [(m.role, m.content) for m in latest]
    assert len(latest) == 4  # One, its newest answer, Two, its answer


async def test_retry_replaces_a_failed_answer_without_showing_it_as_a_version(socket, conversation):
    await ask(socket, conversation, {"type": "send", "content": "Break [[demo:fault=500]]"})
    frames = await ask(socket, conversation, {"type": "retry"})
    failed_first = await conversation.messages.filter(version=REPLACED).afirst()
    assert failed_first is not None and failed_first.status == "error"
    started = frames[0]
    assert started["type"] == "answer_started"
    assert f'data-replaces="{failed_first.pk}"' in started["html"]  # the page drops it
    assert "1/1" in started["html"]  # a failed answer is no version to flip to


async def test_a_refused_regenerate_puts_the_answer_back(socket, conversation, plans):
    first = (await ask(socket, conversation, {"type": "send", "content": "Hi"}))[-1]["message"]
    free = plans["free"]
    free.daily_request_limit = 0
    await free.asave()
    await socket.send_json_to({"type": "regenerate"})
    refused = (await frames_until(socket, "refused"))[-1]
    await idle("chat", conversation.pk)
    assert refused["message"] == errors.DAILY_LIMIT_REACHED.format(limit=0)
    assert (
        len(refused["restored"]) == 1
        and f'data-message-id="{first["id"]}"' in (refused["restored"][0])
    )
    kept = await sync_to_async(rows)(conversation)
    assert kept == [("user", LATEST, "Hi"), ("assistant", LATEST, first["content"])]


# --- Editing a question -----------------------------------------------------------------------


async def test_an_edited_question_replaces_it_and_what_followed(socket, conversation, user):
    await ask(socket, conversation, {"type": "send", "content": "First"})
    question = await conversation.messages.filter(role="user").afirst()
    await ask(socket, conversation, {"type": "send", "content": "Second"})
    frames = await ask(
        socket,
        conversation,
        {"type": "edit", "message_id": question.pk, "content": "First, edited", "client_id": "t"},
    )
    assert [f["type"] for f in frames[:2]] == ["user_message", "answer_started"]
    assert frames[0]["replaces"] == question.pk
    assert frames[0]["message"]["content"] == "First, edited"
    assert frames[-1]["message"]["status"] == "complete"

    kept = await sync_to_async(rows)(conversation)
    assert [(role, version) for role, version, _ in kept] == [
        ("user", REPLACED), ("assistant", REPLACED), ("user", REPLACED), ("assistant", REPLACED),
        ("user", LATEST), ("assistant", LATEST),
    ]  # fmt: skip
    edited = await conversation.messages.aget(pk=frames[0]["message"]["id"])
    assert edited.version_of_id == question.pk  # kept as a version of the question
    assert await sync_to_async(history)(conversation) == [
        ("user", "First, edited"),
        ("assistant", frames[-1]["message"]["content"]),
    ]
    _, shown = await sync_to_async(shown_on_the_page)(user, conversation)
    assert [m.content for m in shown] == ["First, edited", frames[-1]["message"]["content"]]
    # The person's data download still holds everything, what was replaced too.
    download = await sync_to_async(data_download)(user)
    [kept_for_them] = download["conversations"]
    assert [m["content"] for m in kept_for_them["messages"]][::2] == [
        "First", "Second", "First, edited",
    ]  # fmt: skip


async def test_only_the_conversations_own_latest_questions_can_be_edited(
    socket, conversation, user, make_user
):
    other = await sync_to_async(factories.conversation)(
        await sync_to_async(make_user)("otto"), messages=[("user", "Mine")]
    )
    theirs = await other.messages.afirst()
    await socket.send_json_to({"type": "edit", "message_id": theirs.pk, "content": "Taken"})
    error = (await frames_until(socket, "error"))[-1]
    assert error["code"] == "nothing_to_edit" and error["text"] == "Taken"
    assert (await other.messages.aget()).content == "Mine"
    assert await conversation.messages.acount() == 0

    await ask(socket, conversation, {"type": "send", "content": "Hi"})
    answer = await conversation.messages.aget(role="assistant")
    await socket.send_json_to({"type": "edit", "message_id": answer.pk, "content": "Not a q"})
    assert (await frames_until(socket, "error"))[-1]["code"] == "nothing_to_edit"


async def test_regenerating_with_nothing_to_regenerate_says_so(socket, conversation):
    await socket.send_json_to({"type": "regenerate"})
    error = (await frames_until(socket, "error"))[-1]
    assert (error["code"], error["message"]) == (
        "nothing_to_regenerate",
        answers.NOTHING_TO_REGENERATE,
    )
    assert await conversation.messages.acount() == 0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"message_id": "1", "content": "x"}, "invalid_edit"),
        ({"content": "x"}, "invalid_edit"),
        ({"message_id": 1, "content": "   "}, "empty"),
        ({"message_id": 1, "content": "x" * 11}, "too_long"),
    ],
)
async def test_edits_are_checked_like_any_text(socket, conversation, frame, code, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    await socket.send_json_to({"type": "edit", **frame})
    error = (await frames_until(socket, "error"))[-1]
    assert error["code"] == code
    if frame["content"].strip():
        assert error["text"] == frame["content"]  # given back


async def test_no_edit_while_an_answer_is_being_written(socket, conversation):
    await ask(socket, conversation, {"type": "send", "content": "First"})
    question = await conversation.messages.filter(role="user").afirst()
    await socket.send_json_to(
        {"type": "send", "content": "Slowly [[demo:slow=0.05]] [[demo:words=400]]"}
    )
    await frames_until(socket, "delta")
    await socket.send_json_to({"type": "edit", "message_id": question.pk, "content": "Changed"})
    error = (await frames_until(socket, "error"))[-1]
    assert error["code"] == "busy" and error["text"] == "Changed"
    await socket.send_json_to({"type": "stop"})
    await frames_until(socket, "answer_finished")
    await idle("chat", conversation.pk)
    assert not await conversation.messages.filter(content="Changed").aexists()
    assert not await conversation.messages.exclude(version=LATEST).aexists()


async def test_a_refused_edit_gives_the_text_back_and_loses_nothing(socket, conversation, plans):
    await ask(socket, conversation, {"type": "send", "content": "First"})
    await ask(socket, conversation, {"type": "regenerate"})
    before = await sync_to_async(rows)(conversation)
    question = await conversation.messages.filter(role="user").afirst()
    free = plans["free"]
    free.daily_request_limit = 0
    await free.asave()
    await socket.send_json_to(
        {"type": "edit", "message_id": question.pk, "content": "Edited", "client_id": "tab"}
    )
    frames = await frames_until(socket, "refused")
    await idle("chat", conversation.pk)
    refused = frames[-1]
    assert frames[0]["type"] == "user_message" and frames[0]["replaces"] == question.pk
    assert refused["text"] == "Edited" and refused["client_id"] == "tab"
    assert refused["edited_id"] == question.pk
    assert refused["question_id"] == frames[0]["message"]["id"]  # the page drops it
    # The question and both versions of its answer come back, as a reload shows them.
    assert len(refused["restored"]) == 3
    assert "hidden>" in refused["restored"][1] and ">2/2<" in refused["restored"][2]
    assert await sync_to_async(rows)(conversation) == before
    assert (await Conversation.objects.aget(pk=conversation.pk)).title == "First"


# --- Earlier messages, a page at a time ---------------------------------------------------------


def test_a_turns_versions_come_with_its_page_of_earlier_messages(client, user):
    from chat.views import PAGE_MESSAGES

    conversation = factories.conversation(user, messages=[("user", "Old question")])
    first = Message.objects.create(
        conversation=conversation, role="assistant", content="Take 1", version=EARLIER
    )
    Message.objects.create(
        conversation=conversation, role="assistant", content="Take 2", version_of=first
    )
    for number in range(PAGE_MESSAGES):
        role = "user" if number % 2 == 0 else "assistant"
        Message.objects.create(conversation=conversation, role=role, content=f"Later {number}")
    client.force_login(user)

    page = client.get(f"/chat/{conversation.pk}/")
    assert page.context["chat_messages"][0].content == "Later 0"
    assert len(page.context["chat_messages"]) == PAGE_MESSAGES
    before = page.context["earlier"]

    earlier = client.get(f"/chat/{conversation.pk}/earlier/?before={before}").json()
    assert earlier["before"] is None
    html = earlier["html"]
    assert html.index("Old question") < html.index("Take 1") < html.index("Take 2")
    assert html.count(f'data-turn="{first.pk}"') == 2
    assert f'data-turn="{first.pk}" hidden>' in html  # the earlier version, out of sight
    assert ">1/2<" in html and ">2/2<" in html
