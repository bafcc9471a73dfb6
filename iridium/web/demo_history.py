"""Thirty days of demo history for the analytics console: conversations, tickets and creations
of the demo users, each with the generation rows (and tool steps) their answers would have
left, so that a fresh install's console shows what it is for.

Deterministic (a seeded random generator) and written once: if demo history exists, nothing
changes. The rows are written here directly, not through iridium.ai, because no call is made:
they are what past calls would have recorded. Every demo row's span id starts with `demo-`."""

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from codegen.models import Creation
from iridium import ai
from iridium.accounts.models import User
from iridium.ai.models import Feedback, Generation, Span
from iridium.analytics import rollups
from support.models import Ticket, TicketMessage

DAYS = 30
SPAN_PREFIX = "demo-"
EXPERIMENT = "ai-model-experiment"
EXPERIMENT_DAYS = 14  # the experiment ran over the last two weeks
# USD per million tokens: input, cached input, output (the providers' list prices).
PRICES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
    "gpt-4.1": (Decimal("2.00"), Decimal("0.50"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("0.10"), Decimal("1.60")),
}
# Per model: typical latency (ms) per output token and to the first token.
SPEED = {
    "gpt-4o-mini": (9, 350),
    "gpt-4o": (16, 520),
    "gpt-4.1": (18, 600),
    "gpt-4.1-mini": (10, 380),
}
QUESTIONS = [
    ("Trip to Lisbon", "Plan three days in **Lisbon** for a first visit."),
    ("Quarterly report", "Summarise this quarter's numbers in five bullet points."),
    ("SQL join", "What is the difference between a LEFT JOIN and an INNER JOIN?"),
    ("Birthday ideas", "Ideas for a 40th birthday party on a small budget?"),
    ("Refund policy", "How do refunds work for annual plans?"),
    ("Regex help", "A regular expression for UK postcodes, please."),
]
TICKETS = [
    ("Charged twice in March", "billing", "My March invoice charges me twice."),
    ("Cannot reset password", "account", "The reset link says it expired."),
    ("Export is slow", "technical", "Exporting my data takes minutes."),
    ("Change of plan", "billing", "How do I move from Pro to Enterprise?"),
    ("Login from new device", "account", "I get asked to log in again every day."),
]
CODE = [
    ("python", "A function that parses ISO dates"),
    ("sql", "Top ten customers by revenue"),
    ("javascript", "Debounce a search box"),
    ("go", "A worker pool with a context"),
]


def exists() -> bool:
    return Generation.objects.filter(span_id__startswith=SPAN_PREFIX).exists()


def _cost(model, input_tokens, output_tokens):
    price_in, _, price_out = PRICES[model]
    million = Decimal(1_000_000)
    cost_in = price_in * input_tokens / million
    cost_out = price_out * output_tokens / million
    return cost_in, cost_out, cost_in + cost_out


class _History:
    def __init__(self, now: datetime):
        self.now = now
        self.rng = random.Random(17)
        self.generations: list[Generation] = []
        self.feedback: list[Feedback] = []
        self.spans: list[Span] = []

    def moment(self, day: int) -> datetime:
        """A working-hours moment `day` days ago (never in the future)."""
        base = self.now - timedelta(days=day)
        hour = self.rng.choice([8, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17, 19, 21])
        moment = base.replace(hour=hour, minute=self.rng.randrange(60), second=0)
        return min(moment, self.now - timedelta(minutes=self.rng.randrange(1, 50)))

    def call(
        self,
        *,
        user,
        feature,
        model,
        trace_id,
        at,
        messages,
        answer,
        privacy=False,
        variant="",
        step=1,
        tools=(),
        parent_id="",
        session_id="",
    ):
        rng = self.rng
        span_id = f"{SPAN_PREFIX}{uuid.UUID(int=rng.getrandbits(128)).hex}"
        characters = sum(len(str(m.get("content") or "")) for m in messages)
        input_tokens = 40 + ai.estimate_tokens(characters)
        output_tokens = max(8, ai.estimate_tokens(len(answer)) + rng.randrange(0, 120))
        per_token, first = SPEED[model]
        first_token = first * rng.uniform(0.6, 1.8)
        latency = first_token + per_token * output_tokens * rng.uniform(0.7, 1.5)
        fields = {
            "created_at": at,
            "trace_id": trace_id,
            "session_id": session_id,
            "span_id": span_id,
            "parent_id": parent_id,
            "user": user,
            "organization": user.organization,
            "plan": user.effective_plan,
            "feature": feature,
            "provider": "openai",
            "model": model,
            "stream": True,
            "step": step,
            "privacy_mode": privacy,
            "variant": variant,
            "routing_reason": f"experiment variant {variant}" if variant else "plan default",
            "flags": {EXPERIMENT: variant} if variant else {},
            "tools": list(tools),
            "estimated_input_tokens": round(input_tokens * rng.uniform(0.85, 1.1)),
        }
        roll = rng.random()
        if roll < 0.03:  # the provider failed
            status = rng.choice([429, 500, 503])
            fields.update(
                is_error=True,
                http_status=status,
                latency_ms=rng.uniform(80, 900),
                error=f"{'RateLimitError' if status == 429 else 'InternalServerError'} ({status})",
                attempts=3,
                input_tokens=0,
                output_tokens=0,
            )
        elif feature == "code-generation" and roll < 0.15:  # answered from the cache
            _, _, saved = _cost(model, input_tokens, output_tokens)
            fields.update(
                cache_hit=True,
                latency_ms=rng.uniform(2, 9),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_cost_usd=Decimal(0),
                saved_cost_usd=saved,
                http_status=200,
            )
        else:
            cost_in, cost_out, total = _cost(model, input_tokens, output_tokens)
            fields.update(
                latency_ms=latency,
                time_to_first_token_ms=first_token,
                http_status=200,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                input_cost_usd=cost_in,
                output_cost_usd=cost_out,
                total_cost_usd=total,
                finish_reason="stop",
            )
        if not privacy:
            fields["input"] = messages
            fields["output"] = [{"role": "assistant", "content": answer}]
        row = Generation(**fields)
        self.generations.append(row)
        return row

    def rate(self, user, answer, row: Generation) -> None:
        """Some answers get a thumbs up or down from their person (the test variant a little
        more often up), now and then with a comment."""
        rng = self.rng
        if rng.random() > 0.4:
            return
        liked = rng.random() < (0.8 if row.variant == "test" else 0.65)
        self.feedback.append(
            Feedback(
                user=user,
                trace_id=answer.trace_id,
                session_id=answer.ai_session_id,
                feature=row.feature,
                model=row.model,
                variant=row.variant,
                rating="up" if liked else "down",
                comment="" if liked or rng.random() < 0.5 else "It missed what I asked.",
                privacy_mode=row.privacy_mode,
            )
        )

    def tool(self, *, user, feature, trace_id, parent: Generation, query: str, result):
        self.spans.append(
            Span(
                created_at=parent.created_at + timedelta(milliseconds=parent.latency_ms + 5),
                trace_id=trace_id,
                session_id=parent.session_id,
                span_id=f"{SPAN_PREFIX}{uuid.uuid4().hex}",
                parent_id=parent.span_id,
                name="tool:search_knowledge_base",
                user=user,
                feature=feature,
                latency_ms=self.rng.uniform(4, 40),
                input_state={"query": query},
                output_state=result,
            )
        )


def _model_for(user, variant: str) -> str:
    if variant == "test":
        return "gpt-4.1-mini"
    return user.effective_plan.default_model


def seed(*, now: datetime | None = None) -> int:
    """Write the demo history once; returns the generation rows written (0 if it exists)."""
    if exists():
        return 0
    now = now or timezone.now()
    people = {u.username: u for u in User.objects.filter(username__in=["alice", "bob", "carol"])}
    agent = User.objects.filter(username="dana").first()
    if len(people) < 3:
        return 0
    history = _History(now)
    rng = history.rng
    customers = [people["alice"], people["bob"], people["carol"], people["carol"]]
    with transaction.atomic():
        for day in range(DAYS - 1, -1, -1):
            busy = 0.6 if (now - timedelta(days=day)).weekday() >= 5 else 1.0
            for _ in range(round(rng.randint(4, 9) * busy)):
                _chat(history, rng.choice(customers), day)
            for _ in range(rng.choice([0, 1, 1, 2]) if busy == 1.0 else rng.choice([0, 1])):
                _ticket(history, rng.choice(customers), agent, day)
            for _ in range(round(rng.randint(1, 3) * busy)):
                _creation(history, rng.choice(customers), day)
        Generation.objects.bulk_create(history.generations, batch_size=1000)
        Span.objects.bulk_create(history.spans, batch_size=1000)
        Feedback.objects.bulk_create(history.feedback, batch_size=1000)
    rollups.rollup()
    rollups.rollup_new_hours()
    return len(history.generations)


def _variant(history, day: int) -> str:
    return history.rng.choice(["control", "test"]) if day < EXPERIMENT_DAYS else ""


def _chat(history, user, day):
    rng = history.rng
    title, question = rng.choice(QUESTIONS)
    conversation = Conversation.objects.create(user=user, title=title)
    at = history.moment(day)
    Conversation.objects.filter(pk=conversation.pk).update(created_at=at, updated_at=at)
    messages = [{"role": "user", "content": question}]
    for turn in range(rng.randint(1, 4)):
        variant = _variant(history, day)
        model = _model_for(user, variant)
        answer = f"Here is a short answer (turn {turn + 1}) to: *{question}*\n\n- first\n- second"
        Message.objects.create(conversation=conversation, role="user", content=question)
        reply = Message.objects.create(
            conversation=conversation, role="assistant", content=answer, model=model
        )
        # Each answer is a trace of its own; the conversation is their session.
        row = history.call(
            user=user,
            feature="chat",
            model=model,
            trace_id=reply.trace_id,
            session_id=conversation.ai_session_id,
            at=at,
            messages=list(messages),
            answer=answer,
            variant=variant,
        )
        if title == "Refund policy" and not row.is_error:
            history.tool(
                user=user,
                feature="chat",
                trace_id=reply.trace_id,
                parent=row,
                query="refund",
                result={"articles": ["Understanding your invoice"]},
            )
        Message.objects.filter(pk=reply.pk).update(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.total_cost_usd,
        )
        if not row.is_error:
            history.rate(user, reply, row)
        messages += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "Thanks, and one more detail?"},
        ]
        at += timedelta(seconds=rng.randint(30, 300))
        if at > history.now:
            break


def _ticket(history, user, agent, day):
    rng = history.rng
    title, category, description = rng.choice(TICKETS)
    at = history.moment(day)
    outcome = rng.choices(["assistant", "person", "open"], weights=[5, 3, 1 if day > 3 else 4])[0]
    needs_person = outcome == "person" and agent is not None
    status = "open" if outcome == "open" else rng.choice(["resolved", "closed"])
    ticket = Ticket.objects.create(
        user=user,
        title=title,
        description=description,
        category=category,
        status=status,
        priority=rng.choice(["low", "normal", "high"]),
        assigned_to=agent if needs_person else None,
        needs_human=needs_person,
    )
    Ticket.objects.filter(pk=ticket.pk).update(created_at=at, updated_at=at)
    TicketMessage.objects.create(ticket=ticket, kind="customer", author=user, content=description)
    answer = "Thanks for writing. Here is what to do next:\n\n1. Open **Settings**.\n2. Check it."
    reply = TicketMessage.objects.create(
        ticket=ticket, kind="assistant", content=answer, model="gpt-4o-mini"
    )
    row = history.call(
        user=user,
        feature="customer-support",
        model="gpt-4o-mini",
        trace_id=reply.trace_id,
        session_id=ticket.ai_session_id,
        at=at,
        messages=[{"role": "user", "content": description}],
        answer=answer,
        tools=["search_knowledge_base", "hand_over_to_human"],
    )
    if not row.is_error:
        history.tool(
            user=user,
            feature="customer-support",
            trace_id=reply.trace_id,
            parent=row,
            query=title.lower(),
            result={"articles": []},
        )
    if not row.is_error:
        history.rate(user, reply, row)
    if needs_person:
        TicketMessage.objects.create(
            ticket=ticket,
            kind="agent",
            author=agent,
            content="I have looked into it and fixed it for you.",
        )


def _creation(history, user, day):
    rng = history.rng
    at = history.moment(day)
    if rng.random() < 0.7:
        language, prompt = rng.choice(CODE)
        fields = {"kind": "code", "language": language, "complexity": "simple"}
        feature, privacy = "code-generation", False
        answer = f"```{language}\n// {prompt}\n```"
    else:
        prompt = rng.choice(["A launch announcement", "Release notes for 2.3", "A welcome email"])
        fields = {
            "kind": "content",
            "content_type": "blog-post",
            "tone": "friendly",
            "target_length": 300,
        }
        feature, privacy = "content-generation", True
        answer = "A short text."
    trace_id = f"codegen-{int(at.timestamp() * 1000)}-{user.pk}"
    row = history.call(
        user=user,
        feature=feature,
        model=user.effective_plan.default_model,
        trace_id=trace_id,
        at=at,
        messages=[{"role": "user", "content": prompt}],
        answer=answer,
        privacy=privacy,
    )
    creation = Creation.objects.create(
        user=user,
        prompt=prompt,
        trace_id=trace_id,
        content=answer,
        model=row.model,
        from_cache=row.cache_hit,
        **fields,
    )
    Creation.objects.filter(pk=creation.pk).update(created_at=at, updated_at=at)
