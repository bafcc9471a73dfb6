from django.conf import settings


def layout(request):
    """What the base layout shows on every page: the signed-in user's plan."""
    user = getattr(request, "user", None)
    plan = user.effective_plan if user is not None and user.is_authenticated else None
    return {"current_plan": plan, "demo_provider": settings.AI_USES_DEMO_PROVIDER}
