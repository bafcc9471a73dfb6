"""Which model answers: decided by the service, never by the app."""

from .types import Complexity


def choose_model(*, plan, complexity: Complexity) -> str:
    """The plan's advanced model for advanced requests, its default model otherwise."""
    return plan.advanced_model if complexity == "advanced" else plan.default_model
