"""What tests of the AI service's policy (limits, budgets, the cache) share."""

from decimal import Decimal

from tests import factories


def ask(text: str = "hello") -> list[dict]:
    """The messages of a one-question call."""
    return [{"role": "user", "content": text}]


def spend(amount, **subject) -> None:
    """A call that cost `amount` (USD) earlier this month, for `subject` (user=...,
    organization=...): budgets read it from the generation table. Its trace is "earlier"."""
    factories.create_generation(
        trace_id="earlier", model="gpt-4o", latency_ms=1, total_cost_usd=Decimal(amount), **subject
    )
