"""The browser's PostHog session id (iridium.ai.replay): validated as untrusted input, carried
from a websocket frame or an HTTP request through `ai.Request.replay_session_id` to every event
of the call it starts, as `$session_id`."""

import asyncio

import pytest
from django.test import AsyncClient
from django.urls import reverse

from codegen import answers as codegen_answers
from codegen.models import Creation
from iridium.ai import posthog, replay
from iridium.ai.recorder import recorder
from iridium.live import protocol, runs
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

SESSION = "019b1e2a-7c3d-7f00-8a1b-2c3d4e5f6a7b"  # a UUIDv7, as posthog-js makes them


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        (SESSION, SESSION),
        (SESSION.upper(), SESSION),
        ("", ""),
        (None, ""),
        (42, ""),
        (["x"], ""),
        (SESSION + "0", ""),
        (" " + SESSION, ""),
        (SESSION[:-1] + "g", ""),
        (SESSION.replace("-", ""), ""),
        ("x" * 10_000, ""),
        (SESSION[:-1] + "\x00", ""),
        ('"><script>', ""),
    ],
)
def test_only_a_session_id_as_posthog_js_makes_them_is_taken(given, taken):
    assert replay.valid(given) == taken


def test_only_frames_that_start_an_answer_carry_one():
    for frame_type in protocol.STARTS_AN_ANSWER:
        frame = {"type": frame_type, protocol.REPLAY_SESSION_FIELD: SESSION}
        assert protocol.replay_session_id(frame) == SESSION
    assert protocol.replay_session_id({"type": "stop", "replay_session_id": SESSION}) == ""
    assert protocol.replay_session_id({"type": "send", "replay_session_id": "nope"}) == ""


def test_a_frame_context_holds_a_valid_session_id_only():
    with replay.session_context(SESSION):
        assert replay.current() == SESSION
        with replay.session_context("not a session"):
            assert replay.current() == ""  # a fresh context: nothing of the outer one
    assert replay.current() == ""


async def events_of(fake_posthog, count, name):
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)
    return fake_posthog.wait_for(count, name)


async def test_every_event_of_a_chat_answer_carries_the_frames_session(
    ai_settings, user, fake_posthog
):
    conversation = await asyncio.to_thread(factories.conversation, user)
    communicator, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await communicator.receive_json_from()
    # The knowledge-base search: two provider calls and a tool loop's spans.
    await communicator.send_json_to(
        {"type": "send", "content": "How do I reset my password?", "replay_session_id": SESSION}
    )
    await frames_until(communicator, "answer_finished")
    await idle("chat", conversation.pk)
    generations = await events_of(fake_posthog, 2, "$ai_generation")
    spans = fake_posthog.wait_for(1, "$ai_span")
    assert {e["properties"]["$session_id"] for e in generations + spans} == {SESSION}

    fake_posthog.clear()
    await communicator.send_json_to({"type": "regenerate", "replay_session_id": "bad\x00id"})
    frames = await frames_until(communicator, "answer_finished")
    assert frames[-1]["message"]["status"] == "complete"  # a bad id is no error
    await idle("chat", conversation.pk)
    generations = await events_of(fake_posthog, 2, "$ai_generation")
    assert all("$session_id" not in e["properties"] for e in generations)
    await communicator.disconnect()


CODE = {"prompt": "A function that adds two numbers", "language": "python", "framework": "",
        "complexity": "simple"}  # fmt: skip
CONTENT = {"prompt": "A note on jam", "tone": "playful", "content_type": "product-description",
           "target_length": 120}  # fmt: skip


async def generate(user, kind, data, **headers):
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post(reverse("codegen:create", args=[kind]), data, headers=headers)
    creation = await Creation.objects.filter(user=user).order_by("-pk").afirst()
    while runs.running(codegen_answers.run_key(creation.pk)):
        await asyncio.sleep(0.02)
    return response


@pytest.mark.parametrize(
    ("kind", "data", "headers"),
    [
        # posthog-js's tracing header, read by posthog-python's Django middleware
        ("code", CODE, {"X-POSTHOG-SESSION-ID": SESSION}),
        # a posted form's field (static/js/analytics.js fills it)
        ("code", {**CODE, "posthog_session_id": SESSION}, {}),
        # privacy mode: the session id is no content, so it is sent
        ("content", CONTENT, {"X-POSTHOG-SESSION-ID": SESSION.upper()}),
    ],
)
async def test_a_generation_started_over_http_carries_the_pages_session(
    ai_settings, user, fake_posthog, kind, data, headers
):
    response = await generate(user, kind, data, **headers)
    assert response.status_code == 302
    [event] = await events_of(fake_posthog, 1, "$ai_generation")
    assert event["properties"]["$session_id"] == SESSION


@pytest.mark.parametrize("value", ["", "../../etc/passwd", "x" * 5000, "a\x7fb"])
async def test_a_bad_session_header_is_ignored(ai_settings, user, fake_posthog, value):
    response = await generate(user, "code", CODE, **({"X-POSTHOG-SESSION-ID": value}))
    assert response.status_code == 302
    [event] = await events_of(fake_posthog, 1, "$ai_generation")
    assert "$session_id" not in event["properties"]


async def test_without_a_session_no_session_id_is_sent(ai_settings, user, fake_posthog):
    await generate(user, "code", CODE)
    [event] = await events_of(fake_posthog, 1, "$ai_generation")
    assert "$session_id" not in event["properties"]


def connect_src(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    directive = next(d for d in policy.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


def test_the_layout_loads_posthog_and_the_csp_allows_its_host_only_with_a_web_key(
    client, settings, user
):
    client.force_login(user)
    settings.POSTHOG_HOST = "https://eu.i.posthog.com"
    response = client.get(reverse("chat:index"))
    assert b"posthog" not in response.content
    assert connect_src(response) == ["'self'"]

    settings.POSTHOG_WEB_KEY = "phc_web"
    settings.POSTHOG_WEB_HOST = "https://ph.example.com/ingest/"
    response = client.get(reverse("chat:index"))
    assert connect_src(response) == ["'self'", "https://ph.example.com"]
    config = response.context["posthog_browser"]
    assert config["apiHost"] == "https://ph.example.com/ingest"
    assert config["distinctId"] == str(user.pk)
    assert config["maskTextSelector"] != "*"
    assert b'id="posthog-config"' in response.content
    assert b"vendor/posthog-js/array.full.no-external.js" in response.content


def test_privacy_mode_plans_mask_all_text_and_pseudonymous_plans_use_the_pseudonym(
    client, settings, make_user, plans
):
    from iridium.ai.pseudonyms import pseudonym

    settings.POSTHOG_WEB_KEY = "phc_web"
    settings.ANALYTICS_PSEUDONYMOUS_PLANS = ["pro"]
    plans["pro"].privacy_mode_forced = True
    plans["pro"].save()
    person = make_user("pia", plan="pro")
    client.force_login(person)
    config = client.get(reverse("chat:index")).context["posthog_browser"]
    assert config["distinctId"] == pseudonym(person.pk)
    assert config["maskTextSelector"] == "*"
