"""Bad input, property-based (hypothesis): arbitrary JSON values and unicode (NUL, lone
surrogates, control characters, deep nesting) in every frame field of every socket, and in every
form field and query parameter of every page. Wanted: no 500, no socket dropped, an error frame
that gives the typed text back, and the conversation still working afterwards."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iridium.live import protocol
from support.models import Ticket
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

# Any character, surrogates and NUL included.
ANY_TEXT = st.text(st.characters(exclude_categories=[]), max_size=40)
# What an HTTP form can carry (a browser encodes text as UTF-8, so no lone surrogates).
FORM_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40) | st.sampled_from(
    ["\x00", "a\x00b", " ", "\u202e", "\ufeff", "x" * 5000]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Every field a frame from the page has (protocol's docstring); a rating is sometimes a real one.
FIELDS = {
    "content": JSON_VALUES,
    "client_id": JSON_VALUES,
    "message_id": JSON_VALUES,
    "rating": st.sampled_from(protocol.RATINGS) | JSON_VALUES,
    "comment": JSON_VALUES,
    protocol.REPLAY_SESSION_FIELD: JSON_VALUES,
}
FRAMES = st.fixed_dictionaries(
    {"type": st.sampled_from(protocol.FROM_PAGE) | JSON_VALUES}, optional=FIELDS
)
RAW = st.sampled_from(
    ["", "null", "[]", "42", '"send"', "{", '{"type": 1}', "[" * 20_000, "\x00", "{}" * 100]
)
PROBE = "probe\x00\udc80"  # itself a frame type no socket knows


async def exchange(socket, raw: str, frame: dict | None) -> list[dict]:
    """Send one frame, then a probe; every frame up to the probe's error. A dropped socket
    fails here (receive_json_from gets the close instead of a frame)."""
    await socket.send_input({"type": "websocket.receive", "text": raw})
    await socket.send_json_to({"type": PROBE})
    received = []
    while True:
        reply = await socket.receive_json_from(timeout=10)
        if (
            reply["type"] == "error"
            and reply["code"] == "unknown_type"
            and "probe" in reply["message"]
        ):
            return received
        assert reply["type"] in protocol.TO_PAGE, reply
        received.append(reply)


def check_nothing_lost(frame, received):
    """A refused `send` gives back exactly what the person typed."""
    if not isinstance(frame, dict) or frame.get("type") != protocol.SEND:
        return
    content = frame.get("content")
    for reply in received:
        if reply["type"] == "error" and isinstance(content, str) and content.strip():
            assert reply.get("text") == content, reply


@pytest.mark.parametrize("kind", ["chat", "ticket", "creation"])
def test_any_frame_gets_an_answer_and_never_drops_the_socket(ai_settings, user, kind):
    if kind == "chat":
        target = factories.conversation(user)
    elif kind == "ticket":
        target = factories.ticket(user)
    else:
        target = factories.creation(user)
    loop = asyncio.new_event_loop()
    try:
        socket, connected, _ = loop.run_until_complete(open_socket(user, kind, target.pk))
        assert connected
        loop.run_until_complete(frames_until(socket, "ready"))

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(st.one_of(FRAMES, RAW))
        def any_frame(frame):
            raw = frame if isinstance(frame, str) else json.dumps(frame)
            received = loop.run_until_complete(exchange(socket, raw, frame))
            check_nothing_lost(frame, received)

        any_frame()
        assert loop.run_until_complete(still_works(socket, kind, target.pk))
        loop.run_until_complete(socket.disconnect())
    finally:
        loop.run_until_complete(cancel_the_rest())
        # As asyncio.run does: closes what the loop's AI client opened (iridium.ai.provider).
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def cancel_the_rest():
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def still_works(socket, kind, object_id) -> bool:
    """After all that, the same socket still takes a message and the answer arrives."""
    await idle(kind, object_id, timeout=30)
    if kind == "creation":  # a creation's socket only streams; it takes no messages
        await socket.send_json_to({"type": "stop"})
        return True
    await socket.send_json_to(
        {"type": "send", "content": "And now a real question", "client_id": "z"}
    )
    while True:  # frames of answers the examples started may still be on their way
        shown = await socket.receive_json_from(timeout=20)
        assert shown["type"] != "error", shown
        if shown["type"] == "user_message":
            break
    assert shown["message"]["content"] == "And now a real question"
    if kind == "ticket":  # the examples may have asked for a person: then no assistant answers
        return True
    frames = await frames_until(socket, "answer_finished", timeout=20)
    return frames[-1]["message"]["status"] == "complete"


# --- Forms and query parameters -----------------------------------------------------------------


def pages_and_forms(user, agent):
    """(who, method, url, field names) for every form and query parameter a person can send.
    Every POST also carries the browser's PostHog session id (`posthog_session_id`)."""
    from iridium.analytics.filters import FilterForm
    from iridium.web.middleware import ReplaySessionFromForm

    conversation = factories.conversation(user, messages=[("user", "hi"), ("assistant", "yo")])
    factories.create_generation(trace_id=conversation.ai_session_id,
                                session_id=conversation.ai_session_id, user=user)  # fmt: skip
    ticket = factories.ticket(user)
    filters = list(FilterForm({}).fields)
    trace_filters = list(FilterForm({}, with_day=True).fields)
    names = ["analytics:dashboard", "analytics:experiments", "analytics:budgets",
             "analytics:export"]  # fmt: skip
    console = [(agent, "get", reverse(name), filters) for name in names]
    targets = [
        (user, "get", reverse("chat:index"), ["q"]),
        (user, "get", reverse("chat:earlier", args=[conversation.pk]), ["before"]),
        (user, "post", reverse("chat:rename", args=[conversation.pk]), ["title"]),
        (user, "get", reverse("support:articles"), ["q"]),
        (
            user,
            "post",
            reverse("support:new"),
            ["title", "description", "priority", "category"],
        ),
        (
            agent,
            "get",
            reverse("support:queue"),
            ["q", "status", "priority", "category", "assigned"],
        ),
        (agent, "post", reverse("support:assign", args=[ticket.pk]), ["agent"]),
        (agent, "post", reverse("support:status", args=[ticket.pk]), ["status"]),
        (
            user,
            "post",
            reverse("codegen:create", args=["code"]),
            ["prompt", "language", "framework", "complexity"],
        ),
        (
            user,
            "post",
            reverse("codegen:create", args=["content"]),
            ["prompt", "tone", "content_type", "target_length"],
        ),
        (user, "post", reverse("password_change"), ["old_password", "new_password1"]),
        (user, "post", reverse("account_delete"), ["password"]),
        (None, "post", reverse("signup"), ["username", "email", "password1", "password2"]),
        (None, "post", reverse("login"), ["username", "password"]),
        (None, "post", reverse("admin:login"), ["username", "password"]),
        *console,
        (agent, "get", reverse("analytics:traces"), trace_filters),
        (agent, "get", reverse("analytics:session", args=[conversation.ai_session_id]), filters),
    ]
    field = ReplaySessionFromForm.FIELD
    return [
        (who, method, url, [*fields, field] if method == "post" else fields)
        for who, method, url, fields in targets
    ]


@pytest.mark.django_db(transaction=True)
def test_any_text_in_any_form_or_query_is_a_page_never_a_500(plans, user, staff):
    agent = factories.support_agent("dana", is_superuser=True)
    targets = pages_and_forms(user, agent)
    clients = {}
    for who in {user, agent, None}:
        clients[who] = Client(raise_request_exception=False)
        if who is not None:
            clients[who].force_login(who)

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.sampled_from(targets), st.data())
    def any_text(target, data):
        who, method, url, fields = target
        values = {name: data.draw(FORM_TEXT, label=name) for name in fields}
        client = clients[who]
        response = getattr(client, method)(url, values)
        assert response.status_code < 500, (url, values, response.status_code)
        if response.streaming:  # the export: its rows are read as it streams
            b"".join(response.streaming_content)

    any_text()

    # Bytes that are not UTF-8 at all (a lone surrogate's encoding, a NUL) in a query string.
    for url in (reverse("chat:index"), reverse("support:articles")):
        response = clients[user].get(url, QUERY_STRING="q=%ED%A0%80%00x")
        assert response.status_code in (200, 400), url


def test_a_nul_in_a_search_or_a_title_is_a_clear_400(client, user):
    client.force_login(user)
    conversation = factories.conversation(user)
    for url in (reverse("chat:index"), reverse("support:articles")):
        response = client.get(url, {"q": "a\x00b"})
        assert response.status_code == 400
        assert "Text cannot contain the NUL character." in response.content.decode()
    response = client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "a\x00b"})
    assert response.status_code == 400
    assert "Text cannot contain the NUL character." in response.content.decode()
    conversation.refresh_from_db()
    assert "\x00" not in conversation.title


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ("nul \x00 here", "invalid_text", "Text cannot contain the NUL character."),
        ("broken \ud83d emoji", "invalid_text", "Text cannot contain an unpaired surrogate"),
        (12345, "invalid_text", "A message must be text."),
        ({"a": 1}, "invalid_text", "A message must be text."),
        ("   ", "empty", "Type a message first."),
    ],
)
@pytest.mark.parametrize("kind", ["chat", "ticket"])
async def test_bad_content_is_refused_with_the_text_given_back(
    ai_settings, user, kind, content, code, message
):
    target = await sync_to_async(factories.conversation if kind == "chat" else factories.ticket)(
        user
    )
    socket, connected, _ = await open_socket(user, kind, target.pk)
    assert connected
    await frames_until(socket, "ready")
    await idle(kind, target.pk)
    await socket.send_json_to({"type": "send", "content": content, "client_id": "c"})
    error = (await frames_until(socket, "error"))[-1]
    assert error["code"] == code and error["message"].startswith(message)
    assert error.get("text", "") == (content if isinstance(content, str) else "")
    # The socket is still there and takes the next message.
    await socket.send_json_to({"type": "send", "content": "A fine message", "client_id": "d"})
    assert (await frames_until(socket, "answer_finished", timeout=15))[-1]["type"]
    await socket.disconnect()


async def test_a_models_tool_arguments_with_nul_are_made_storable(ai_settings, user):
    """The model's text is not the person's: a NUL in its tool arguments is replaced, and the
    tools still work (a ticket is filed, the search runs)."""
    conversation = await sync_to_async(factories.conversation)(user)
    socket, _, _ = await open_socket(user, "chat", conversation.pk)
    await frames_until(socket, "ready")
    file_it = (
        '[[demo:tool=create_support_ticket {"title": "a\\u0000b", "description": "c\\u0000d"}]]'
    )
    search = '[[demo:tool=search_knowledge_base {"query": "pass\\u0000word"}]]'
    await socket.send_json_to({"type": "send", "content": f"{file_it} {search}", "client_id": "t"})
    frames = await frames_until(socket, "answer_finished", timeout=15)
    tools = {f["name"]: f["ok"] for f in frames if f["type"] == "tool"}
    assert tools == {"create_support_ticket": True, "search_knowledge_base": True}
    ticket = await Ticket.objects.aget(user=user, source="chat")
    assert ticket.title == "a\ufffdb" and ticket.description == "c\ufffdd"
    await socket.disconnect()
