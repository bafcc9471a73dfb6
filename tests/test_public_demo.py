"""The public demo of the home page (iridium/web/public_demo.py) over the full ASGI application
(origin check, sessions, routing), answered by the demo provider through the real openai SDK,
reported to the fake PostHog by the real posthog client, limited through the real cache."""

import asyncio
import json
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chat.models import Conversation, Message
from iridium.ai import posthog
from iridium.ai.models import Generation
from iridium.ai.recorder import recorder
from iridium.asgi import application
from iridium.infra import errors
from iridium.live import protocol
from iridium.live.consumers import FrameConsumer
from iridium.web import public_demo
from tests.helpers.frames import (
    SOCKET_MODULE,
    close_codes_of,
    frames_handled_by_script,
    frames_made_in,
    frames_sent_by_script,
)
from tests.helpers.sockets import ORIGIN

PAGE_SCRIPT = (Path(__file__).resolve().parent.parent / "static/js/public-demo.js").read_text()


@pytest.fixture
def demo_settings(ai_settings):
    ai_settings.PUBLIC_DEMO = True
    ai_settings.PUBLIC_DEMO_VISITOR_RATE = "3/d"
    ai_settings.PUBLIC_DEMO_ADDRESS_RATE = "100/d"
    ai_settings.PUBLIC_DEMO_DAILY_CALLS = 100
    return ai_settings


def visitor_cookie() -> str:
    """A visitor's session, as the home page's script starts it before the first question."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/")
    assert page.status_code == 200 and settings.SESSION_COOKIE_NAME not in client.cookies
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = client.post(reverse("public_demo_start"), headers={"X-CSRFToken": token})
    assert response.status_code == 204
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def open_demo(cookie: str | None = "", *, origin=ORIGIN, address="203.0.113.7"):
    """The demo's socket for a new visitor (cookie ""), a given session, or none (None)."""
    if cookie == "":
        cookie = await sync_to_async(visitor_cookie)()
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/demo/", headers)
    communicator.scope["client"] = (address, 40000)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def until(socket, *types, timeout=10) -> list[dict]:
    received = []
    while True:
        frame = await socket.receive_json_from(timeout=timeout)
        received.append(frame)
        if frame["type"] in types:
            return received


async def ready_socket(cookie: str | None = "", **options):
    socket, connected, code = await open_demo(cookie, **options)
    assert connected, code
    assert await socket.receive_json_from() == {"type": "ready", "in_progress": None}
    return socket


def delivered(fake, count):
    recorder.flush()
    posthog.flush()
    return fake.wait_for(count, name="$ai_generation")


# --- The home page ------------------------------------------------------------------------------


def test_the_home_page_offers_the_demo_to_visitors_only(demo_settings, user):
    client = Client()
    page = client.get("/").content.decode()
    assert "data-public-demo" in page and "js/public-demo.js" in page
    assert "Sign up free" in page
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "data-public-demo" not in page and "public-demo.js" not in page


def test_switched_off_the_home_page_has_no_demo(demo_settings):
    demo_settings.PUBLIC_DEMO = False
    page = Client().get("/").content.decode()
    assert "data-public-demo" not in page and "public-demo.js" not in page
    assert Client().post(reverse("public_demo_start")).status_code == 404


def test_the_demo_starts_a_session_only_when_asked_and_under_csrf(demo_settings):
    client = Client(enforce_csrf_checks=True)
    client.get("/")
    assert settings.SESSION_COOKIE_NAME not in client.cookies  # a visit costs no session
    assert client.post(reverse("public_demo_start")).status_code == 403  # no CSRF token
    assert client.get(reverse("public_demo_start")).status_code == 405


# --- Answers ------------------------------------------------------------------------------------


async def test_a_visitor_gets_an_answer_tracked_anonymously(demo_settings, fake_posthog):
    socket = await ready_socket()
    await socket.send_json_to({"type": "send", "content": "What is **Iridium**?"})
    frames = await until(socket, "answer_finished", "refused", "error")
    assert [f["type"] for f in frames[:2]] == ["answer_started", "delta"]
    finished = frames[-1]
    assert finished["type"] == "answer_finished"
    assert finished["message"]["status"] == "complete"
    streamed = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert streamed and finished["html"].startswith("<")
    offsets = [f["offset"] for f in frames if f["type"] == "delta"]
    assert offsets[0] == 0 and offsets == sorted(offsets)

    [event] = await asyncio.to_thread(delivered, fake_posthog, 1)
    properties = event["properties"]
    assert event["distinct_id"] == properties["$ai_trace_id"]
    assert properties["$ai_trace_id"].startswith("public-demo-")
    assert properties["$process_person_profile"] is False
    assert properties["$ai_span_name"] == "public-demo"
    assert properties["source"] == "landing-page"
    assert "$ai_tools" not in properties
    assert "$ai_input" not in properties  # privacy mode: what a visitor types is not kept
    row = await Generation.objects.aget()
    assert row.user_id is None and row.feature == "public-demo" and row.input is None
    assert row.model == finished["message"]["model"] == "gpt-4o-mini"  # the free plan's model
    assert await Conversation.objects.acount() == 0
    assert await Message.objects.acount() == 0
    await socket.disconnect()


async def test_the_conversation_goes_on_within_the_page(demo_settings, fake_posthog):
    socket = await ready_socket()
    for question in ("first question", "second question"):
        await socket.send_json_to({"type": "send", "content": question})
        finished = (await until(socket, "answer_finished"))[-1]
        assert finished["message"]["status"] == "complete"
    events = await asyncio.to_thread(delivered, fake_posthog, 2)
    assert len({e["properties"]["$ai_trace_id"] for e in events}) == 2
    await socket.disconnect()


# --- Limits -------------------------------------------------------------------------------------


async def ask(socket, text="Hello") -> dict:
    await socket.send_json_to({"type": "send", "content": text})
    return (await until(socket, "answer_finished", "refused", "error"))[-1]


async def test_a_visitor_has_a_few_questions_a_day(demo_settings):
    demo_settings.PUBLIC_DEMO_VISITOR_RATE = "2/d"
    cookie = await sync_to_async(visitor_cookie)()
    socket = await ready_socket(cookie)
    assert (await ask(socket))["type"] == "answer_finished"
    assert (await ask(socket))["type"] == "answer_finished"
    refused = await ask(socket, "one more")
    assert refused["code"] == "demo_limit"
    assert "Sign up" in refused["message"] and refused["signup_url"] == "/accounts/signup/"
    assert refused["text"] == "one more"
    await socket.disconnect()
    # A new socket of the same session is the same visitor; another session is not.
    again = await ready_socket(cookie)
    assert (await ask(again))["type"] == "refused"
    other = await ready_socket()
    assert (await ask(other))["type"] == "answer_finished"
    await again.disconnect()
    await other.disconnect()


async def test_an_address_has_a_few_questions_a_day(demo_settings):
    demo_settings.PUBLIC_DEMO_ADDRESS_RATE = "1/d"
    first = await ready_socket(address="198.51.100.1")
    assert (await ask(first))["type"] == "answer_finished"
    second = await ready_socket(address="198.51.100.1")  # a new session, the same address
    refused = await ask(second)
    assert refused["type"] == "refused" and refused["code"] == "demo_limit"
    assert "network" in refused["message"] and "Sign up" in refused["message"]
    elsewhere = await ready_socket(address="198.51.100.2")
    assert (await ask(elsewhere))["type"] == "answer_finished"
    for socket in (first, second, elsewhere):
        await socket.disconnect()


async def test_the_install_caps_the_demo_for_everybody(demo_settings):
    demo_settings.PUBLIC_DEMO_DAILY_CALLS = 1
    first = await ready_socket(address="198.51.100.3")
    assert (await ask(first))["type"] == "answer_finished"
    second = await ready_socket(address="198.51.100.4")
    refused = await ask(second)
    assert refused["type"] == "refused" and refused["message"] == public_demo.INSTALL_LIMIT
    for socket in (first, second):
        await socket.disconnect()


# --- Who may connect ----------------------------------------------------------------------------


async def test_switched_off_the_socket_refuses(demo_settings):
    cookie = await sync_to_async(visitor_cookie)()
    demo_settings.PUBLIC_DEMO = False
    _, connected, code = await open_demo(cookie)
    assert not connected and code == protocol.CLOSE_FORBIDDEN


async def test_another_origin_is_refused(demo_settings):
    _, connected, _ = await open_demo(origin=b"https://evil.example")
    assert not connected


async def test_a_session_the_demo_did_not_start_is_refused(demo_settings):
    for cookie in (None, f"{settings.SESSION_COOKIE_NAME}=made-up-session-key-12345"):
        _, connected, code = await open_demo(cookie)
        assert not connected and code == protocol.CLOSE_FORBIDDEN


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "send", "content": "a\x00b"}, "invalid_text"),
        ({"type": "send", "content": "x" * 1001}, "too_long"),
        ({"type": "send", "content": ["not", "text"]}, "invalid_text"),
        ({"type": "send", "content": 42}, "invalid_text"),
        ({"type": "send", "content": "   "}, "empty"),
        ({"type": "regenerate"}, "unknown_type"),
        ({"content": "no type"}, "malformed"),
    ],
)
async def test_bad_frames_get_a_clear_error(demo_settings, frame, code):
    socket = await ready_socket()
    await socket.send_json_to(frame)
    error = await socket.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code and error["message"]
    if (
        frame.get("type") == "send"
        and isinstance(frame["content"], str)
        and frame["content"].strip()
    ):
        assert error["text"] == frame["content"]  # what was typed comes back
    assert await Generation.objects.acount() == 0
    await socket.disconnect()


ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=[])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
@given(content=ANY_VALUE, kind=st.sampled_from(["send", "stop", "", "\x00"]))
def test_any_frame_gets_an_answer_or_an_error_never_a_dropped_socket(demo_settings, content, kind):
    demo_settings.PUBLIC_DEMO_VISITOR_RATE = "0/d"  # no calls: a valid question is refused

    async def exchange():
        socket = await ready_socket()
        raw = json.dumps({"type": kind, "content": content})
        await socket.send_input({"type": "websocket.receive", "text": raw})
        reply = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return reply

    reply = asyncio.run(exchange())
    assert reply["type"] in ("error", "refused") and reply["message"]


# --- The page speaks the protocol ---------------------------------------------------------------


def test_the_page_script_speaks_the_protocol():
    assert frames_sent_by_script(PAGE_SCRIPT) == {protocol.SEND}
    source = Path(public_demo.__file__).read_text()
    server = set(frames_made_in(source, "iridium/web/public_demo.py"))
    server.add(protocol.ERROR)  # every socket's (iridium.live.consumers.FrameConsumer)
    assert server >= {protocol.READY, protocol.DELTA, protocol.REFUSED}  # the scan finds them
    handled = frames_handled_by_script(PAGE_SCRIPT)
    assert handled == server, (handled, server)
    # The page's socket is the shared one, whose close codes are the protocol's.
    assert re.search(r'from "\./live-socket\.js"', PAGE_SCRIPT)
    assert close_codes_of(SOCKET_MODULE)["CLOSE_FORBIDDEN"] == protocol.CLOSE_FORBIDDEN


async def test_without_its_counters_the_demo_answers_nobody(demo_settings):
    """The limits are what caps the demo's cost: while the cache that counts is unreachable
    (Redis away), the demo refuses, with the question given back, instead of answering all."""
    cookie = await sync_to_async(visitor_cookie)()
    socket = await ready_socket(cookie)
    demo_settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    refused = await ask(socket, "are you there?")
    assert refused["type"] == "refused" and refused["message"] == public_demo.UNAVAILABLE
    assert refused["text"] == "are you there?"
    assert await Generation.objects.filter(feature=public_demo.FEATURE).acount() == 0
    await socket.disconnect()


# --- One message template, one socket -----------------------------------------------------------


async def test_the_demos_messages_are_rendered_by_the_one_message_template(demo_settings):
    """The answer comes as every page's answers do: its message rendered by live/_message.html,
    thinking while it starts, then with its Markdown; without the actions of saved answers."""
    socket = await ready_socket()
    await socket.send_json_to({"type": "send", "content": "What is **Iridium**?"})
    frames = await until(socket, "answer_finished")
    started, finished = frames[0], frames[-1]
    assert started["type"] == "answer_started"
    assert started["html"].startswith(
        f'<li class="message assistant streaming" data-message-id="{started["message_id"]}"'
    )
    assert '<div class="message-author">Assistant</div>' in started["html"]
    assert "data-thinking" in started["html"]
    html = finished["html"]
    assert html.startswith(
        f'<li class="message assistant" data-message-id="{finished["message_id"]}"'
    )
    assert '<div class="message-body answer-body markdown"><p>' in html
    assert "<strong>" in html  # the answer's Markdown, rendered by the server
    for action in ("retry", "copy-answer", "data-feedback"):
        assert action not in html
    await socket.disconnect()


async def test_a_failed_demo_answer_says_why_without_a_retry(demo_settings):
    socket = await ready_socket()
    await socket.send_json_to({"type": "send", "content": "Hello [[demo:fault=400]]"})
    finished = (await until(socket, "answer_finished"))[-1]
    assert finished["message"]["status"] == "error" and finished["message"]["error"]
    html = finished["html"]
    assert html.startswith('<li class="message assistant error"')
    assert '<span class="status-note error" role="alert">' in html
    assert "retry" not in html  # nothing to retry: the conversation lives in the page
    await socket.disconnect()


def test_the_home_page_holds_the_visitors_question_as_the_template_renders_it(demo_settings):
    page = Client().get("/").content.decode()
    template = re.search(r"<template data-question>(.*?)</template>", page, re.S)
    assert template, "the empty question the page fills in"
    assert template[1].startswith('<li class="message user"')
    assert '<div class="message-author">You</div>' in template[1]
    assert '<div class="message-body user-text"></div>' in template[1]


def test_the_demos_socket_is_one_of_the_protocols_sockets():
    """Frames are validated and errors mapped by the sockets' one base, busy is the shared
    domain error, and the frames come from the protocol's builders."""
    assert issubclass(public_demo.PublicDemoConsumer, FrameConsumer)
    assert "receive" not in vars(public_demo.PublicDemoConsumer)
    assert not hasattr(public_demo, "Busy") or public_demo.Busy is errors.Busy
    source = Path(public_demo.__file__).read_text()
    assert '"type":' not in source  # frames are built by iridium.live.protocol


def test_the_pages_share_one_socket_and_build_no_messages():
    """The pages' scripts open their socket through static/js/live-socket.js, and the demo's
    script draws no message and names no author: the server's template does."""
    scripts = Path(__file__).resolve().parent.parent / "static" / "js"
    for name in ("stream-page.js", "public-demo.js"):
        script = (scripts / name).read_text()
        assert 'from "./live-socket.js"' in script, name
        assert "new WebSocket(" not in script, name
        assert "CLOSE_" not in script, name
    for markup in ('"li"', "message-author", "thinking", '"Assistant"', '"You"'):
        assert markup not in PAGE_SCRIPT, markup
