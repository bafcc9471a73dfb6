"""Figures that a new installation starts with."""

from decimal import Decimal

# The plans every installation starts with; admins change the figures afterwards.
DEFAULT_PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "position": 0,
        "default_model": "gpt-4o-mini",
        "advanced_model": "gpt-4o-mini",
        "monthly_budget_usd": Decimal("1.00"),
        "daily_request_limit": 50,
        "max_output_tokens": 2048,
        "max_answers_in_flight": 2,
        "privacy_mode_forced": False,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "position": 1,
        "default_model": "gpt-4o-mini",
        "advanced_model": "gpt-4o",
        "monthly_budget_usd": Decimal("20.00"),
        "daily_request_limit": 1000,
        "max_output_tokens": 4096,
        "max_answers_in_flight": 4,
        "privacy_mode_forced": False,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "position": 2,
        "default_model": "gpt-4o",
        "advanced_model": "gpt-4.1",
        "monthly_budget_usd": Decimal("500.00"),
        "daily_request_limit": 20000,
        "max_output_tokens": 8192,
        "max_answers_in_flight": 8,
        "privacy_mode_forced": True,
    },
]
