"""Turns, sessions and feedback: each answer is a trace of its own with an `$ai_trace` event,
grouped by `$ai_session_id`; people rate the answers that were for them (thumbs and a comment)
over the page's socket, change their rating, and PostHog gets the documented survey response,
without the comment in privacy mode. Real PostgreSQL, the demo provider over HTTP, the real
posthog SDK against the loopback capture server."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from iridium import ai
from iridium.ai import posthog
from iridium.ai.models import Feedback, Generation
from iridium.ai.recorder import recorder
from tests import factories
from tests.helpers.posthog_schema import GENERATION_SCHEMA, assert_follows_schema
from tests.helpers.sockets import frames_until, idle, open_socket

# PostHog's documented $ai_trace properties and their JSON types.
TRACE_SCHEMA = {
    "$ai_trace_id": str,
    "$ai_session_id": str,
    "$ai_input_state": (dict, list, str),
    "$ai_output_state": (dict, list, str),
    "$ai_latency": float,
    "$ai_span_name": str,
    "$ai_is_error": bool,
    "$ai_error": str,
}
# A survey response linked to a trace, as PostHog's LLM analytics documents user feedback
# (index-based response keys when the survey's question ids are not configured).
SURVEY_SENT_SCHEMA = {
    "$survey_id": str,
    "$ai_trace_id": str,
    "$survey_submission_id": str,
    "$survey_completed": bool,
    "$survey_response": int,
    "$survey_response_1": str,
}
SURVEY = "0190aaaa-feed-back-0000-000000000001"
SECRET = "walrus-marmalade-5521"


def delivered(fake, count, name):
    recorder.flush()
    posthog.flush()
    return fake.wait_for(count, name=name)


def assert_survey_response(event):
    properties = event["properties"]
    names = {n for n in properties if n.startswith(("$survey", "$ai_"))}
    assert names <= set(SURVEY_SENT_SCHEMA), names - set(SURVEY_SENT_SCHEMA)
    assert {"$survey_id", "$ai_trace_id", "$survey_submission_id"} <= names
    for name in names:
        assert isinstance(properties[name], SURVEY_SENT_SCHEMA[name]), name
        assert not isinstance(properties[name], bool) or SURVEY_SENT_SCHEMA[name] is bool


# --- Turns and sessions -----------------------------------------------------------------------


async def test_each_turn_is_a_trace_in_its_session(ai_settings, user, fake_posthog):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": "What is a websocket?"},
    ]
    completion = await ai.complete(
        ai.Request(
            user=user, feature="chat", messages=messages,
            trace_id="conversation-9-31", ai_session_id="conversation-9",
        )
    )  # fmt: skip
    [row] = [g async for g in Generation.objects.all()]
    assert (row.trace_id, row.session_id) == ("conversation-9-31", "conversation-9")
    [generation] = await asyncio.to_thread(delivered, fake_posthog, 1, "$ai_generation")
    assert_follows_schema(generation, GENERATION_SCHEMA)
    assert generation["properties"]["$ai_session_id"] == "conversation-9"
    [trace] = fake_posthog.wait_for(1, name="$ai_trace")
    assert_follows_schema(
        trace,
        TRACE_SCHEMA,
        {"$ai_trace_id", "$ai_session_id", "$ai_input_state", "$ai_output_state", "$ai_latency"},
    )
    properties = trace["properties"]
    assert properties["$ai_trace_id"] == "conversation-9-31"
    assert properties["$ai_session_id"] == "conversation-9"
    assert properties["$ai_span_name"] == "chat" and properties["$ai_is_error"] is False
    # The turn's own input (what came after the last answer), and its answer.
    assert properties["$ai_input_state"] == [{"role": "user", "content": "What is a websocket?"}]
    assert properties["$ai_output_state"] == [{"role": "assistant", "content": completion.text}]
    assert properties["$ai_latency"] >= row.latency_ms / 1000 * 0.99
    assert trace["distinct_id"] == str(user.pk)


async def test_a_turns_trace_keeps_content_out_in_privacy_mode(ai_settings, user, fake_posthog):
    await ai.complete(
        ai.Request(
            user=user, feature="chat", privacy=True, trace_id="t-1", ai_session_id="s-1",
            messages=[{"role": "user", "content": f"keep {SECRET} private"}],
        )
    )  # fmt: skip
    [trace] = await asyncio.to_thread(delivered, fake_posthog, 1, "$ai_trace")
    assert "$ai_input_state" not in trace["properties"]
    assert "$ai_output_state" not in trace["properties"]
    assert SECRET not in json.dumps(fake_posthog.events())


async def test_a_failed_turn_is_an_error_trace(ai_settings, user, fake_posthog):
    with pytest.raises(ai.ProviderError) as failure:
        await ai.complete(
            ai.Request(
                user=user, feature="chat", trace_id="t-2",
                messages=[{"role": "user", "content": "[[demo:fault=400]]"}],
            )
        )  # fmt: skip
    [trace] = await asyncio.to_thread(delivered, fake_posthog, 1, "$ai_trace")
    assert_follows_schema(trace, TRACE_SCHEMA, {"$ai_error"})
    assert trace["properties"]["$ai_is_error"] is True
    assert trace["properties"]["$ai_error"] == str(failure.value)
    assert "$ai_session_id" not in trace["properties"]  # a call that stands alone


# --- Feedback over the page's socket ----------------------------------------------------------


@pytest.fixture
def survey(ai_settings):
    ai_settings.POSTHOG_FEEDBACK_SURVEY_ID = SURVEY
    return SURVEY


async def answered(user, text="What is a websocket?"):
    conversation = await sync_to_async(factories.conversation)(user)
    socket, connected, _ = await open_socket(user, "chat", conversation.pk)
    assert connected
    await socket.receive_json_from()  # ready
    await socket.send_json_to({"type": "send", "content": text})
    frames = await frames_until(socket, "answer_finished")
    await idle("chat", conversation.pk)
    await asyncio.to_thread(recorder.flush)
    return conversation, socket, frames[-1]


async def test_rating_an_answer_and_changing_it(ai_settings, survey, user, fake_posthog):
    conversation, socket, finished = await answered(user)
    assert "data-feedback" in finished["html"] and 'aria-pressed="false"' in finished["html"]
    answer_id = finished["message_id"]
    await socket.send_json_to({"type": "feedback", "message_id": answer_id, "rating": "up"})
    saved = await frames_until(socket, "feedback_saved")
    assert saved[-1] == {"type": "feedback_saved", "message_id": answer_id, "rating": "up",
                         "comment": ""}  # fmt: skip
    [up] = await asyncio.to_thread(delivered, fake_posthog, 1, "survey sent")
    assert_survey_response(up)
    trace_id = f"conversation-{conversation.pk}-{answer_id}"
    assert up["properties"]["$ai_trace_id"] == trace_id
    assert up["properties"]["$survey_response"] == 1 and up["properties"]["$survey_completed"]
    assert up["properties"]["$survey_id"] == SURVEY and up["distinct_id"] == str(user.pk)
    # Changed: thumbs down with a comment. One row still; the same submission, answered again.
    await socket.send_json_to(
        {"type": "feedback", "message_id": answer_id, "rating": "down", "comment": " Too vague "}
    )
    await frames_until(socket, "feedback_saved")
    events = await asyncio.to_thread(delivered, fake_posthog, 3, "survey sent")
    down, comment = events[1:]
    for event in (down, comment):
        assert_survey_response(event)
        assert (
            event["properties"]["$survey_submission_id"]
            == up["properties"]["$survey_submission_id"]
        )
    assert down["properties"]["$survey_response"] == 2
    assert down["properties"]["$survey_completed"] is False
    assert comment["properties"]["$survey_response_1"] == "Too vague"
    assert comment["properties"]["$survey_completed"] is True
    [row] = [f async for f in Feedback.objects.all()]
    assert (row.user_id, row.trace_id, row.rating, row.comment) == (
        user.pk, trace_id, "down", "Too vague")  # fmt: skip
    assert (row.session_id, row.feature, row.model) == (
        conversation.ai_session_id, "chat", finished["message"]["model"])  # fmt: skip
    # The page shows it pressed when it is opened again.
    from django.test import AsyncClient
    from django.urls import reverse

    client = AsyncClient()
    await client.aforce_login(user)
    page = (await client.get(reverse("chat:conversation", args=[conversation.pk]))).content
    assert b'data-rating="down" aria-pressed="true"' in page and b"Too vague" in page
    await socket.disconnect()


async def test_other_peoples_answers_and_unfinished_ones_are_refused(
    ai_settings, survey, user, make_user, fake_posthog
):
    _, theirs, finished = await answered(user)
    stranger = await sync_to_async(make_user)("sam")
    _, socket, _ = await answered(stranger, "hello")
    # An answer of another conversation (someone else's) is not among this socket's answers.
    await socket.send_json_to(
        {"type": "feedback", "message_id": finished["message_id"], "rating": "up"}
    )
    [error] = (await frames_until(socket, "error"))[-1:]
    assert error["code"] == "invalid_feedback"
    for bad in ({"rating": "sideways"}, {"rating": "up", "message_id": "1"},
                {"rating": "up", "comment": 5}):  # fmt: skip
        await socket.send_json_to({"type": "feedback", "message_id": 1, **bad})
        assert (await frames_until(socket, "error"))[-1]["code"] in (
            "invalid_feedback", "invalid_text")  # fmt: skip
    assert not await Feedback.objects.aexists()
    await asyncio.to_thread(posthog.flush)
    assert not [e for e in fake_posthog.events() if e["event"] == "survey sent"]
    await socket.disconnect()
    await theirs.disconnect()


async def test_a_ticket_agent_may_not_rate_the_customers_answers(
    ai_settings, survey, user, make_user
):
    from django.contrib.auth.models import Permission

    from support.models import TicketMessage

    agent = await sync_to_async(make_user)("dana", is_staff=True)
    await sync_to_async(agent.user_permissions.add)(
        *await sync_to_async(list)(
            Permission.objects.filter(codename__in=["view_ticket", "change_ticket"])
        )
    )
    ticket = await sync_to_async(factories.ticket)(user)
    answer = await TicketMessage.objects.acreate(
        ticket=ticket, kind="assistant", content="Try this.", model="gpt-4o-mini"
    )
    socket, connected, _ = await open_socket(agent, "ticket", ticket.pk)
    assert connected
    await socket.receive_json_from()
    await socket.send_json_to({"type": "feedback", "message_id": answer.pk, "rating": "down"})
    assert (await frames_until(socket, "error"))[-1]["code"] == "forbidden"
    assert not await Feedback.objects.aexists()
    await socket.disconnect()


async def test_privacy_mode_keeps_the_comment_out_of_posthog(
    ai_settings, survey, make_user, fake_posthog
):
    private = await sync_to_async(make_user)("pam", plan="enterprise")  # privacy forced
    _, socket, finished = await answered(private)
    await socket.send_json_to(
        {"type": "feedback", "message_id": finished["message_id"], "rating": "down",
         "comment": f"it leaked {SECRET}"}
    )  # fmt: skip
    await frames_until(socket, "feedback_saved")
    [event] = await asyncio.to_thread(delivered, fake_posthog, 1, "survey sent")
    assert_survey_response(event)
    assert event["properties"]["$survey_response"] == 2
    assert event["properties"]["$survey_completed"] is True
    assert SECRET not in json.dumps(fake_posthog.events())
    row = await Feedback.objects.aget()
    assert row.privacy_mode and SECRET in row.comment  # kept in our own table only
    await socket.disconnect()


async def test_without_a_survey_feedback_is_kept_but_not_sent(ai_settings, user, fake_posthog):
    _, socket, finished = await answered(user)
    await socket.send_json_to(
        {"type": "feedback", "message_id": finished["message_id"], "rating": "up"}
    )
    await frames_until(socket, "feedback_saved")
    assert await Feedback.objects.filter(rating="up").aexists()
    await asyncio.to_thread(posthog.flush)
    assert not [e for e in fake_posthog.events() if e["event"] == "survey sent"]
    await socket.disconnect()


def test_the_comment_box_takes_what_the_socket_takes(db, user, monkeypatch):
    from iridium.live import protocol
    from iridium.live.rendering import message_html

    conversation = factories.conversation(user, messages=[("user", "Hi"), ("assistant", "Hello")])
    answer = conversation.messages.get(role="assistant")
    assert f'maxlength="{protocol.FEEDBACK_COMMENT_CHARS}"' in message_html(answer)
    monkeypatch.setattr(protocol, "FEEDBACK_COMMENT_CHARS", 1234)
    assert 'maxlength="1234"' in message_html(answer)
