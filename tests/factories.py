"""Rows for tests, made by plain functions: a test names only what it is about and takes
sensible defaults for the rest.

Users, conversations, tickets and creations are saved (tickets through the support service,
as the app files them). Generation rows come unsaved from `generation(**overrides)`, saved one
at a time by `create_generation` or many in one query by `create_generations(specs)`.

These are sync functions: async tests call them through `sync_to_async`.
"""

import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.utils import timezone

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium.accounts.models import Plan, User
from iridium.ai.models import Generation, Span
from iridium.analytics.models import AlertRule
from support import services as support
from support.models import Ticket

DEFAULT_PASSWORD = "a-Str0ng-pass!"


# --- People -----------------------------------------------------------------------------------


def user(
    username: str = "someone",
    *,
    plan: str | Plan = "free",
    organization=None,
    password: str = DEFAULT_PASSWORD,
    **fields,
) -> User:
    """A user on `plan` (a slug of the default plans, or a Plan) who logs in with `password`.
    The plans come from their data migration (transactional tests: the `plans` fixture)."""
    if not isinstance(plan, Plan):
        plan = Plan.objects.get(slug=plan)
    person = User(username=username, plan=plan, organization=organization, **fields)
    person.set_password(password)
    person.save()
    return person


def support_agent(username: str = "dana", **fields) -> User:
    """Staff in the "Support agents" group: they handle tickets."""
    from support.access import agents_group

    agent = user(username, is_staff=True, **fields)
    agent.groups.add(agents_group())
    return agent


# --- What people make -------------------------------------------------------------------------


def conversation(owner: User, *, messages: Iterable[tuple[str, str]] = (), **fields):
    """A conversation of `owner`, with `messages` as (role, content) pairs, complete."""
    made = Conversation.objects.create(user=owner, **fields)
    for role, content in messages:
        Message.objects.create(conversation=made, role=role, content=content)
    return made


TICKET = {
    "title": "Invoice is wrong",
    "description": "My March invoice charges me twice. How do I get a refund?",
    "priority": "high",
    "category": "billing",
}


def ticket(owner: User, **fields) -> Ticket:
    """A ticket filed by `owner` through the support service (its description opens the
    thread); `fields` change the form's values (title, description, priority, ...)."""
    return support.create_ticket(user=owner, **{**TICKET, **fields})


def creation(owner: User, **fields) -> Creation:
    """A finished code snippet in `owner`'s history."""
    fields.setdefault("kind", Creation.Kind.CODE)
    fields.setdefault("prompt", "A function that adds two numbers")
    fields.setdefault("trace_id", f"codegen-{uuid.uuid4().hex[:12]}-{owner.pk}")
    return Creation.objects.create(user=owner, **fields)


# --- Generation records -----------------------------------------------------------------------


def generation(**overrides) -> Generation:
    """An unsaved generation row: a chat call to gpt-4o-mini made now, with a span id of its
    own. Any field can be given; fields not named keep the model's defaults (cost unknown,
    no tokens, no error, no content)."""
    fields = {
        "created_at": timezone.now(),
        "trace_id": "trace",
        "span_id": uuid.uuid4().hex,
        "feature": "chat",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "latency_ms": 100.0,
    }
    fields.update(overrides)
    return Generation(**fields)


def create_generation(**overrides) -> Generation:
    """`generation(**overrides)`, saved."""
    row = generation(**overrides)
    row.save()
    return row


def create_generations(specs: Iterable[dict]) -> list[Generation]:
    """One row per spec (the overrides of `generation`), saved in one query."""
    return Generation.objects.bulk_create([generation(**spec) for spec in specs])


def varied_call(index: int, person: User, **fields) -> dict:
    """The spec of a call (for `create_generations`) whose feature, model, variant, cost,
    latency, first token, error and cache hit vary with `index`, so that rows made for
    `range(n)` cover every filter and figure of the console; `fields` add to it or override."""
    return {
        "user": person,
        "plan": person.plan,
        "feature": ["chat", "customer-support", "code-generation"][index % 3],
        "model": ["gpt-4o-mini", "gpt-4o"][(index // 2) % 2],
        "variant": ["", "control", "test"][(index // 3) % 3],
        "total_cost_usd": None if index % 17 == 0 else Decimal(index % 13) / 1000,
        "latency_ms": float(100 + (index * 37) % 900),
        "time_to_first_token_ms": None if index % 4 == 0 else float(10 + index % 50),
        "is_error": index % 11 == 0,
        "cache_hit": index % 9 == 0,
        "saved_cost_usd": Decimal("0.002") if index % 9 == 0 else None,
        "input_tokens": 100 + index,
        "output_tokens": 20 + index % 30,
        **fields,
    }


def span(**overrides) -> Span:
    """A saved span (a tool run) of a chat trace, made now, with a span id of its own."""
    fields = {
        "created_at": timezone.now(),
        "trace_id": "trace",
        "span_id": uuid.uuid4().hex,
        "name": "tool:search_knowledge_base",
        "feature": "chat",
        "latency_ms": 1.0,
    }
    fields.update(overrides)
    return Span.objects.create(**fields)


def spend_alert_that_fires():
    """Three calls of $0.20 today and an alert rule on today's spend above $0.10, no cooldown:
    it fires every time it is evaluated."""
    create_generations(
        [{"total_cost_usd": Decimal("0.20"), "created_at": timezone.now()} for _ in range(3)]
    )
    return AlertRule.objects.create(
        name="Spend today", kind="spend", threshold=Decimal("0.10"), cooldown_minutes=0
    )
