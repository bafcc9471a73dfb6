"""seed_demo writes 30 days of history that the console shows, once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium import ai
from iridium.ai.models import Feedback, Generation, Span
from iridium.analytics import comparisons, selectors
from support.models import Ticket, TicketMessage


def counts():
    return tuple(
        model.objects.count() for model in (Generation, Span, Conversation, Ticket, Creation)
    )


@pytest.fixture
def seeded(plans):
    with override_settings(DEBUG=True):
        call_command("seed_demo")


def test_thirty_days_of_varied_history_written_once(seeded):
    before = counts()
    assert all(before)
    with override_settings(DEBUG=True):
        call_command("seed_demo")
    assert counts() == before  # idempotent
    rows = Generation.objects.all()
    now = timezone.now()
    assert not rows.filter(created_at__gt=now).exists()
    assert not rows.filter(created_at__lt=now - timedelta(days=31)).exists()
    days = {row.date() for row in rows.values_list("created_at", flat=True)}
    assert len(days) >= 28
    assert rows.values("user").distinct().count() == 3
    assert rows.values("plan").distinct().count() == 3
    assert rows.filter(organization__isnull=False).exists()
    assert set(rows.values_list("feature", flat=True)) == {
        "chat", "customer-support", "code-generation", "content-generation"}  # fmt: skip
    assert rows.values("model").distinct().count() >= 3
    assert 0 < rows.filter(is_error=True).count() < rows.count() * 0.1
    hits = rows.filter(cache_hit=True)
    assert hits.exists() and not hits.filter(saved_cost_usd__isnull=True).exists()
    assert set(rows.exclude(variant="").values_list("variant", flat=True)) == {"control", "test"}
    assert not rows.filter(feature="content-generation", input__isnull=False).exists()
    priced = rows.filter(cache_hit=False, is_error=False)
    for total, cost_in, cost_out in priced.values_list(
        "total_cost_usd", "input_cost_usd", "output_cost_usd"
    ):
        assert total == pytest.approx(cost_in + cost_out, abs=Decimal("1e-10"))
    assert Span.objects.filter(name="tool:search_knowledge_base").exists()
    # the prompts' tokens are the AI service's estimate of them (and a system prompt's 40)
    for tokens, messages in priced.exclude(input=None).values_list("input_tokens", "input"):
        characters = sum(len(str(m.get("content") or "")) for m in messages)
        assert tokens == 40 + ai.estimate_tokens(characters)
    # every trace is one answer of a real object; conversations and tickets are sessions
    traces = set(rows.values_list("trace_id", flat=True))
    answers = (
        {m.trace_id for m in Message.objects.filter(role="assistant")}
        | {m.trace_id for m in TicketMessage.objects.filter(kind="assistant")}
        | set(Creation.objects.values_list("trace_id", flat=True))
    )
    assert traces <= answers
    sessions = set(rows.exclude(session_id="").values_list("session_id", flat=True))
    assert sessions == {c.ai_session_id for c in Conversation.objects.all()} | {
        t.ai_session_id for t in Ticket.objects.all()
    }
    assert not rows.filter(feature="code-generation").exclude(session_id="").exists()
    # some answers were rated, up and down, by the people they were for
    ratings = set(Feedback.objects.values_list("rating", flat=True))
    assert ratings == {"up", "down"}
    assert Feedback.objects.filter(trace_id__in=traces).count() == Feedback.objects.count()


def test_the_console_shows_it(seeded, client, staff):
    since = selectors.period_start("30d")
    summary = selectors.summary(since=since)
    assert summary["spend"] > 0 and summary["errors"] > 0 and summary["cache_hits"] > 0
    variants = comparisons.variants(since=since)
    assert [row["variant"] for row in variants] == ["control", "test"]
    [support] = comparisons.outcomes(since=since)
    assert {path["outcome"] for path in support["paths"] if path["count"]} == {
        "assistant", "person", "open"}  # fmt: skip
    client.force_login(staff)
    for name in ("analytics:dashboard", "analytics:traces", "analytics:experiments"):
        assert client.get(reverse(name)).status_code == 200
    conversation = Conversation.objects.first()
    session = reverse("analytics:session", args=[conversation.ai_session_id])
    page = client.get(session).content.decode()
    assert f"Conversation {conversation.pk} of {conversation.user.username}" in page
    answer = conversation.messages.filter(role="assistant").first()
    assert reverse("analytics:trace", args=[answer.trace_id]) in page
    page = client.get(reverse("analytics:trace", args=[answer.trace_id])).content.decode()
    assert f"Conversation {conversation.pk} of {conversation.user.username}" in page
    assert session in page
    satisfaction = comparisons.satisfaction(since=since)
    assert {row["key"] for row in satisfaction["variant"]} == {"control", "test"}
    experiments = client.get(reverse("analytics:experiments")).content.decode()
    assert 'data-testid="variant-satisfaction"' in experiments and " up " in experiments
