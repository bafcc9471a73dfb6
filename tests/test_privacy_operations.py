"""Retention, pseudonymous ids, and what a user's deletion leaves behind (nothing)."""

import asyncio
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium import ai
from iridium.ai import posthog
from iridium.ai.models import Generation, Span
from iridium.ai.pseudonyms import pseudonym
from iridium.ai.recorder import recorder
from support import services as support
from support.models import Ticket


def make_generation(days_ago, **extra):
    import uuid

    return Generation.objects.create(
        created_at=timezone.now() - timedelta(days=days_ago),
        trace_id="t",
        span_id=uuid.uuid4().hex,
        feature="chat",
        provider="openai",
        model="gpt-4o-mini",
        latency_ms=1,
        input=[{"role": "user", "content": "old prompt"}],
        output=[{"role": "assistant", "content": "old answer"}],
        **extra,
    )


def test_purge_clears_old_content_then_deletes_old_rows_in_batches(db, capsys):
    recent = make_generation(1)
    middle = make_generation(60)
    old = [make_generation(500) for _ in range(7)]
    Span.objects.create(
        created_at=timezone.now() - timedelta(days=500), trace_id="t", span_id="s-old",
        name="tool:x", feature="chat", latency_ms=1,
    )  # fmt: skip
    call_command("purge_generations", "--older-than", "400", "--content-older-than", "30",
                 "--batch", "3")  # fmt: skip
    assert "deleted 7 generation(s) and 1 span(s)" in capsys.readouterr().out
    recent.refresh_from_db()
    middle.refresh_from_db()
    assert recent.input and recent.output
    assert middle.input is None and middle.output is None
    assert not Generation.objects.filter(pk__in=[g.pk for g in old]).exists()
    assert not Span.objects.exists()


def test_purge_refuses_nonsense(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("purge_generations", "--older-than", "0")


def test_pseudonyms_are_stable_and_keyed(settings):
    settings.ANALYTICS_PSEUDONYM_SECRET = "one secret"
    first = pseudonym(42)
    assert first == pseudonym(42) and first != pseudonym(43)
    assert "42" not in first and first.startswith("p_") and len(first) == 34
    settings.ANALYTICS_PSEUDONYM_SECRET = "another secret"
    assert pseudonym(42) != first


async def test_pseudonymous_plans_reach_posthog_under_a_pseudonym(
    ai_settings, make_user, fake_posthog
):
    from asgiref.sync import sync_to_async

    ai_settings.ANALYTICS_PSEUDONYMOUS_PLANS = ["pro"]
    pro = await sync_to_async(make_user)("paula", plan="pro")
    await ai.complete(ai.Request(user=pro, feature="chat", trace_id="t-p",
                                 messages=[{"role": "user", "content": "hi"}]))  # fmt: skip
    await asyncio.to_thread(recorder.flush)
    await asyncio.to_thread(posthog.flush)
    [event] = fake_posthog.wait_for(1, name="$ai_generation")
    assert event["distinct_id"] == pseudonym(pro.pk) != str(pro.pk)
    row = await Generation.objects.aget()
    assert row.user_id == pro.pk  # the local record still knows whose it is


def test_deleting_a_user_leaves_nothing_of_theirs(user, make_user):
    from django.core.cache import cache

    other = make_user("olive")
    conversation = Conversation.objects.create(user=user)
    Message.objects.create(conversation=conversation, role="user", content="mine")
    ticket = support.create_ticket(user=user, title="t", description="d")
    Creation.objects.create(user=user, kind="code", prompt="p", trace_id="codegen-1-1")
    make_generation(1, user=user)
    Span.objects.create(created_at=timezone.now(), trace_id="t", span_id="s1", name="x",
                        feature="chat", latency_ms=1, user=user)  # fmt: skip
    cache.set(f"user:{user.pk}:ai:abc", {"text": "cached answer"})
    cache.set(f"user:{other.pk}:ai:abc", {"text": "theirs"})
    kept = make_generation(1, user=other)

    user.delete()

    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not Ticket.objects.filter(pk=ticket.pk).exists()
    assert not Creation.objects.exists()
    assert list(Generation.objects.all()) == [kept]
    assert not Span.objects.exists()
    assert cache.get(f"user:{user.pk}:ai:abc") is None
    assert cache.get(f"user:{other.pk}:ai:abc") == {"text": "theirs"}


@override_settings(POSTHOG_API_KEY="")
def test_user_deletion_without_posthog_needs_nothing_else(user):
    user.delete()


def test_user_deletion_asks_posthog_to_delete_the_person(user, posthog_server, settings):
    import time

    settings.POSTHOG_API_KEY = "phc_test"
    settings.POSTHOG_HOST = posthog_server.url
    settings.POSTHOG_PERSONAL_API_KEY = "phx_personal"
    settings.POSTHOG_PROJECT_ID = "7"
    posthog_server.app.clear()
    user.delete()
    deadline = time.monotonic() + 5
    wanted = ("POST", "/api/projects/7/persons/bulk_delete/")
    while wanted not in posthog_server.app.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wanted in posthog_server.app.requests
