from django.conf import settings

from iridium.ai import browser

# A page says the provider is slow after this long without a token: a few seconds, and well
# before the read timeout gives up on it.
SLOW_NOTICE_SECONDS = 5.0


def layout(request):
    """What the base layout shows on every page: the signed-in user's plan, and when a page
    streaming an answer calls the provider slow (milliseconds without a token), and posthog-js's
    settings when PostHog runs in the browser (iridium.ai.browser; None: no PostHog script)."""
    user = getattr(request, "user", None)
    plan = user.effective_plan if user is not None and user.is_authenticated else None
    slow_after = min(SLOW_NOTICE_SECONDS, settings.AI_READ_TIMEOUT / 3)
    return {
        "current_plan": plan,
        "demo_provider": settings.AI_USES_DEMO_PROVIDER,
        "slow_after_ms": round(slow_after * 1000),
        "posthog_browser": browser.config(user),
    }
