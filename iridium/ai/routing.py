"""Which model answers, and why: decided by the service from the plan, the app's complexity
hint and the flags, never by the app. The reason is recorded on every generation."""

from dataclasses import dataclass

from django.conf import settings

from . import errors, pricing
from .flags import ADVANCED_MODEL, EXPERIMENT, KILL_SWITCH, Flag
from .types import Complexity, Usage

KILL_SWITCH_MODES = ("refuse", "cheapest")
# The usage by which models are compared when the kill switch asks for the cheapest one.
REFERENCE_USAGE = Usage(input_tokens=1000, output_tokens=500)


@dataclass(frozen=True)
class Route:
    model: str
    reason: str
    flags: dict  # flag key -> value, for the flags that had one
    variant: str = ""
    system_prompt: str = ""


def choose_route(*, plan, complexity: Complexity, flags: dict[str, Flag]) -> Route:
    """Kill switch first, then an experiment's model, then advanced (hint or flag), then the
    plan's default model."""
    decided = {key: flag.value for key, flag in flags.items() if flag.value is not None}
    kill = flags.get(KILL_SWITCH)
    if kill is not None and kill.value:
        mode = kill.value if kill.value in KILL_SWITCH_MODES else settings.AI_KILL_SWITCH_MODE
        if mode == "refuse":
            raise errors.AIDisabled(errors.AI_DISABLED)
        model = cheapest_model(plan.default_model, plan.advanced_model, settings.AI_CHEAP_MODEL)
        return Route(model, "kill switch: cheapest model", decided)

    experiment = flags.get(EXPERIMENT)
    variant, system_prompt, experiment_model = "", "", ""
    if experiment is not None and isinstance(experiment.value, str):
        variant = experiment.value
        payload = experiment.payload if isinstance(experiment.payload, dict) else {}
        experiment_model = str(payload.get("model") or "")
        system_prompt = str(payload.get("system_prompt") or "")
    if experiment_model:
        reason = f"experiment variant {variant}"
        return Route(experiment_model, reason, decided, variant, system_prompt)

    advanced_flag = flags.get(ADVANCED_MODEL)
    if complexity == "advanced":
        model, reason = plan.advanced_model, "complexity hint: advanced"
    elif advanced_flag is not None and advanced_flag.value:
        model, reason = plan.advanced_model, f"flag {ADVANCED_MODEL}"
    else:
        model, reason = plan.default_model, "plan default"
    if variant:
        reason += f"; experiment variant {variant}"
    return Route(model, reason, decided, variant, system_prompt)


def cheapest_model(*candidates: str) -> str:
    def cost(model):
        price = pricing.price(provider=settings.AI_PROVIDER, model=model, usage=REFERENCE_USAGE)
        return price.total_usd if price is not None else float("inf")

    return min(candidates, key=cost)
