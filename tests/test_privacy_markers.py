"""Privacy mode end to end: a marker typed into every field a person fills in, in every
feature, with privacy on for their plan, is found in the app's own tables (the conversation,
the ticket, the creation) and nowhere else: no PostHog event, no generation or span row, no
analytics page, no log line. Provider errors that quote the prompt are covered too."""

import asyncio
import json
import logging

import pytest
from asgiref.sync import sync_to_async
from django.core import serializers
from django.test import AsyncClient
from django.urls import reverse

from chat.models import Message
from codegen import answers as codegen_answers
from codegen.models import Creation
from iridium import ai
from iridium.ai import posthog
from iridium.ai.models import Feedback, Generation, Span
from iridium.ai.recorder import recorder
from support.models import Ticket
from tests import factories
from tests.helpers.sockets import frames_until, idle, open_socket

MARKER = "quokka-lantern-7731"


async def chat_everything(owner, client):
    """A conversation: a message that makes the assistant search the knowledge base with the
    marker, one the provider refuses while quoting it, one that makes the model call a tool
    named with it (a tool that fails: there is none), an edited question, feedback with a
    comment, a rename and a search."""
    conversation = await sync_to_async(factories.conversation)(owner)
    socket, connected, _ = await open_socket(owner, "chat", conversation.pk)
    assert connected
    await frames_until(socket, "ready")
    search = f'[[demo:tool=search_knowledge_base {{"query": "{MARKER}"}}]]'
    frames = [
        {"type": "send", "content": f"Where is my {MARKER}? {search}"},
        {"type": "send", "content": f"Tell me about {MARKER} [[demo:fault=400]]"},
        {"type": "send", "content": f"Look it up [[demo:tool={MARKER} {{}}]]"},
    ]
    for number, frame in enumerate(frames):
        await socket.send_json_to({**frame, "client_id": str(number)})
        finished = (await frames_until(socket, "answer_finished", timeout=15))[-1]
        if number == 1:
            assert finished["message"]["status"] == "error"  # the provider refused it
        await idle("chat", conversation.pk)
    question = await conversation.messages.filter(role="user").order_by("-pk").afirst()
    await socket.send_json_to(
        {"type": "edit", "message_id": question.pk, "content": f"Edited {MARKER}",
         "client_id": "e"}
    )  # fmt: skip
    finished = (await frames_until(socket, "answer_finished", timeout=15))[-1]
    assert finished["message"]["status"] == "complete"
    await idle("chat", conversation.pk)
    await socket.send_json_to(
        {"type": "feedback", "message_id": finished["message_id"], "rating": "down",
         "comment": f"Not my {MARKER}"}
    )  # fmt: skip
    await frames_until(socket, "feedback_saved")
    await socket.disconnect()
    rename = reverse("chat:rename", args=[conversation.pk])
    assert (await client.post(rename, {"title": f"About {MARKER}"})).status_code == 302
    assert (await client.get(reverse("chat:index"), {"q": MARKER})).status_code == 200
    return conversation


async def support_everything(owner, client):
    """A ticket whose title and description hold the marker (the assistant answers it), a
    follow-up message, and a knowledge-base search."""
    response = await client.post(
        reverse("support:new"),
        {
            "title": f"Lost {MARKER}",
            "description": f"My {MARKER} is gone.",
            "priority": "normal",
            "category": "other",
        },
    )
    assert response.status_code == 302
    ticket = await Ticket.objects.aget(user=owner)
    await idle("ticket", ticket.pk)
    socket, connected, _ = await open_socket(owner, "ticket", ticket.pk)
    assert connected
    await frames_until(socket, "ready")
    await socket.send_json_to({"type": "send", "content": f"Still no {MARKER}", "client_id": "t"})
    await frames_until(socket, "answer_finished", timeout=15)
    await idle("ticket", ticket.pk)
    await socket.disconnect()
    articles = await client.get(reverse("support:articles"), {"q": MARKER})
    assert articles.status_code == 200
    return ticket


async def generate_everything(owner, client):
    """A code snippet whose prompt and framework hold the marker, and a written text whose
    topic does."""
    for kind, data in [
        (
            "code",
            {
                "prompt": f"Parse a {MARKER}",
                "language": "python",
                "framework": f"{MARKER}-framework",
                "complexity": "simple",
            },
        ),
        (
            "content",
            {
                "prompt": f"Praise the {MARKER}",
                "tone": "playful",
                "content_type": "product-description",
                "target_length": 120,
            },
        ),
    ]:
        response = await client.post(reverse("codegen:create", args=[kind]), data)
        assert response.status_code == 302
        creation = await Creation.objects.filter(user=owner).order_by("-pk").afirst()
        while codegen_answers.runs.running(codegen_answers.run_key(creation.pk)):
            await asyncio.sleep(0.02)


async def test_what_people_type_stays_in_the_apps_own_tables(
    ai_settings, make_user, fake_posthog, caplog, plans, staff
):
    caplog.set_level(logging.DEBUG)
    ai_settings.POSTHOG_FEEDBACK_SURVEY_ID = "survey-privacy"  # the feedback goes to PostHog
    plan = plans["pro"]
    plan.privacy_mode_forced = True
    await plan.asave(update_fields=["privacy_mode_forced"])
    owner = await sync_to_async(make_user)("pia", plan="pro")
    client = AsyncClient()
    await client.aforce_login(owner)

    conversation = await chat_everything(owner, client)
    ticket = await support_everything(owner, client)
    await generate_everything(owner, client)
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)

    # The app's own tables hold it: the person gets back what they wrote.
    await conversation.arefresh_from_db()
    assert MARKER in conversation.title
    kept = Message.objects.filter(conversation=conversation, content__contains=MARKER)
    assert await kept.aexists()
    assert await kept.filter(content=f"Edited {MARKER}").aexists()
    assert await Feedback.objects.filter(user=owner, comment=f"Not my {MARKER}").aexists()
    assert MARKER in (await Ticket.objects.aget(pk=ticket.pk)).title
    assert await Creation.objects.filter(user=owner, prompt__contains=MARKER).acount() == 2

    # Every call was recorded, every one in privacy mode, and none holds the marker.
    generations = [g async for g in Generation.objects.all()]
    spans = [s async for s in Span.objects.all()]
    features = {g.feature for g in generations}
    assert features == {"chat", "customer-support", "code-generation", "content-generation"}
    assert all(g.privacy_mode for g in generations) and all(s.privacy_mode for s in spans)
    assert any(g.is_error and "BadRequestError (HTTP 400)" in g.error for g in generations)
    assert any(s.name == "tool:search_knowledge_base" for s in spans)
    assert any(s.name == "tool:unknown" and s.is_error for s in spans)  # the tool it named
    stored = await sync_to_async(serializers.serialize)("json", [*generations, *spans])
    assert MARKER not in stored

    events = fake_posthog.wait_for(len(generations), name="$ai_generation", timeout=10)
    assert events
    assert MARKER not in json.dumps(fake_posthog.events())

    # The console, as the staff who may see the most, shows figures, never the words.
    console = AsyncClient()
    await console.aforce_login(staff)
    pages = [
        reverse("analytics:dashboard"),
        reverse("analytics:traces"),
        reverse("analytics:experiments"),
        reverse("analytics:budgets"),
        reverse("analytics:export"),
        *[reverse("analytics:trace", args=[t]) for t in {g.trace_id for g in generations}],
        *[
            reverse("analytics:session", args=[s])
            for s in {g.session_id for g in generations if g.session_id}
        ],
    ]
    for url in pages:
        response = await console.get(url)
        assert response.status_code == 200, url
        if response.streaming:  # the export: its rows are read from the database as it streams
            body = await sync_to_async(b"".join)(response.streaming_content)
        else:
            body = response.content
        assert MARKER.encode() not in body, url

    logged = "\n".join(
        record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        for record in caplog.records
    )
    assert caplog.records  # the run did log (calls, a refused prompt)
    assert MARKER not in logged
    assert MARKER not in caplog.text


@pytest.mark.parametrize("private", [True, False])
async def test_a_provider_error_is_kept_whole_only_outside_privacy_mode(
    ai_settings, make_user, plans, private
):
    plan = plans["free"]
    plan.privacy_mode_forced = private
    await plan.asave(update_fields=["privacy_mode_forced"])
    owner = await sync_to_async(make_user)("pat")
    conversation = await sync_to_async(factories.conversation)(owner)
    socket, _, _ = await open_socket(owner, "chat", conversation.pk)
    await frames_until(socket, "ready")
    await socket.send_json_to(
        {"type": "send", "content": f"{MARKER} [[demo:fault=400]]", "client_id": "x"}
    )
    await frames_until(socket, "answer_finished", timeout=15)
    await socket.disconnect()
    await asyncio.to_thread(recorder.flush)
    (row,) = [g async for g in Generation.objects.all()]
    assert row.is_error and row.error.startswith("BadRequestError")
    assert (MARKER in row.error) is not private


async def test_a_failing_tool_keeps_what_it_was_given_out_of_rows_events_and_logs(
    ai_settings, make_user, fake_posthog, caplog, plans
):
    """A tool that raises (its message quoting its input), one that refuses (`ToolFailed`, its
    message quoting it too) and one the model names but was not offered, in privacy mode."""
    caplog.set_level(logging.DEBUG)
    owner = await sync_to_async(make_user)("pia", plan="enterprise")  # privacy forced

    async def crashes(arguments, context):
        raise RuntimeError(f"no index for {arguments['query']}")

    async def refuses(arguments, context):
        raise ai.ToolFailed(f"Nothing about {arguments['query']}.")

    tools = [
        ai.Tool("search_knowledge_base", "Search.", {"type": "object"}, crashes),
        ai.Tool("create_support_ticket", "File.", {"type": "object"}, refuses),
    ]
    query = json.dumps({"query": MARKER})
    text = (f"[[demo:tool=search_knowledge_base {query}]] "
            f"[[demo:tool=create_support_ticket {query}]] [[demo:tool={MARKER} {{}}]]")  # fmt: skip
    request = ai.Request(user=owner, feature="chat", trace_id="conversation-tools",
                         messages=[{"role": "user", "content": text}], tools=tools)  # fmt: skip
    called = [e async for e in ai.stream(request) if isinstance(e, ai.ToolCalled)]
    assert [c.is_error for c in called] == [True, True, True]
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)

    spans = [s async for s in Span.objects.filter(name__startswith="tool:")]
    assert sorted(s.name for s in spans) == [
        "tool:create_support_ticket", "tool:search_knowledge_base", "tool:unknown"
    ]  # fmt: skip
    assert all(s.is_error and s.privacy_mode and s.error == "The tool failed." for s in spans)
    stored = await sync_to_async(serializers.serialize)(
        "json", [*[g async for g in Generation.objects.all()], *spans]
    )
    assert MARKER not in stored
    fake_posthog.wait_for(3, name="$ai_span", timeout=10)
    assert MARKER not in json.dumps(fake_posthog.events())
    assert "tool search_knowledge_base failed" in caplog.text  # the crash is logged...
    assert "RuntimeError" in caplog.text
    assert MARKER not in caplog.text  # ...without what it was given
