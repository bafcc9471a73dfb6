"""Who a call is for: the user, their organization and effective plan, resolved once per call.

Resolving takes a database query, so results are kept in this process for a few seconds
(CALLER_TTL_SECONDS). A change to a user, an organization or a plan saved in this process
forgets them at once; other processes see it when their copy expires.
"""

import time

from django.conf import settings

from iridium.accounts.models import Plan, User

from .records import Caller

CALLER_TTL_SECONDS = 5.0
MAX_CACHED_CALLERS = 10_000
_ANONYMOUS = 0

_callers: dict[int, tuple[float, Caller]] = {}


async def resolve_caller(user) -> Caller:
    key = user.pk if user is not None and user.is_authenticated else _ANONYMOUS
    now = time.monotonic()
    cached = _callers.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    if key == _ANONYMOUS:
        plan = await Plan.objects.aget(slug=settings.DEFAULT_PLAN_SLUG)
        caller = Caller(user=None, organization_id=None, plan=plan)
    else:
        caller = caller_of(
            await User.objects.select_related("plan", "organization__plan").aget(pk=key)
        )
    if len(_callers) >= MAX_CACHED_CALLERS:
        _callers.clear()
    _callers[key] = (now + CALLER_TTL_SECONDS, caller)
    return caller


def caller_of(user) -> Caller:
    """The caller of a user loaded with their plan and organization's plan."""
    return Caller(user=user, organization_id=user.organization_id, plan=user.effective_plan)


def load_caller(user) -> Caller:
    """The caller of a signed-in user, read now (for work outside a call, such as feedback)."""
    return caller_of(User.objects.select_related("plan", "organization__plan").get(pk=user.pk))


def forget_callers(**kwargs) -> None:
    _callers.clear()
