"""Pseudonymous ids, and what a user's deletion leaves behind (nothing). Retention:
test_retention.py."""

import asyncio
import logging
from datetime import timedelta

from django.utils import timezone

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium import ai
from iridium.ai import posthog
from iridium.ai.models import Generation, Span
from iridium.ai.pseudonyms import pseudonym
from iridium.ai.recorder import recorder
from support.models import Ticket
from tests import factories


def make_generation(days_ago, **extra):
    """A chat call made `days_ago`, with its content."""
    return factories.create_generation(
        created_at=timezone.now() - timedelta(days=days_ago),
        trace_id="t",
        latency_ms=1,
        input=[{"role": "user", "content": "old prompt"}],
        output=[{"role": "assistant", "content": "old answer"}],
        **extra,
    )


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
    factories.conversation(user, messages=[("user", "mine")])
    ticket = factories.ticket(user, title="t", description="d")
    factories.creation(user, prompt="p", trace_id="codegen-1-1")
    make_generation(1, user=user)
    factories.span(trace_id="t", name="x", latency_ms=1, user=user)
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


def test_user_deletion_without_posthog_needs_nothing_else(
    user, posthog_server, settings, monkeypatch, caplog
):
    """Without a PostHog key nothing of the user is in PostHog: deleting them starts no thread,
    sends PostHog no request and logs nothing, and their rows and cached answers still go."""
    import threading

    from django.core.cache import cache

    from iridium.ai import deletion

    # Everything a person deletion would need, but the project key: only the key is missing.
    settings.POSTHOG_API_KEY = ""
    settings.POSTHOG_HOST = posthog_server.url
    settings.POSTHOG_PERSONAL_API_KEY = "phx_personal"
    settings.POSTHOG_PROJECT_ID = "7"
    posthog_server.app.clear()
    asked = threading.Event()
    real_delete_person = deletion._delete_person

    def delete_person(distinct_ids):
        asked.set()
        real_delete_person(distinct_ids)

    monkeypatch.setattr(deletion, "_delete_person", delete_person)
    factories.conversation(user, messages=[("user", "mine")])
    make_generation(1, user=user)
    cache.set(f"user:{user.pk}:ai:abc", {"text": "cached answer"})

    with caplog.at_level(logging.DEBUG, logger="iridium.ai.deletion"):
        user.delete()

    assert not asked.wait(0.3), "a PostHog person deletion was started"
    assert posthog_server.app.requests == []
    assert [r for r in caplog.records if r.name == "iridium.ai.deletion"] == []
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not Generation.objects.exists()
    assert cache.get(f"user:{user.pk}:ai:abc") is None


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
