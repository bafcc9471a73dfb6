"""Writes to accounts and plans. Every plan change goes through here so that it is recorded."""

from django.db import transaction

from .defaults import DEFAULT_PLANS
from .models import Organization, Plan, PlanChange, User


@transaction.atomic
def change_user_plans(*, users, plan: Plan, changed_by: User | None, note: str = "") -> int:
    """Move users to `plan`, recording one PlanChange per user whose plan really changes.

    Returns how many users changed.
    """
    to_change = list(
        users.exclude(plan=plan).select_related(None).select_for_update().only("pk", "plan_id")
    )
    PlanChange.objects.bulk_create(
        PlanChange(
            user=user, from_plan_id=user.plan_id, to_plan=plan, changed_by=changed_by, note=note
        )
        for user in to_change
    )
    User.objects.filter(pk__in=[u.pk for u in to_change]).update(plan=plan)
    return len(to_change)


def record_plan_change(
    *, subject: User | Organization, from_plan: Plan | None, changed_by: User | None, note=""
) -> PlanChange | None:
    """Record a plan change that a form has already saved (the admin's user or organization form).

    Records nothing when the plan did not change.
    """
    from_plan_id = from_plan.pk if from_plan else None
    if from_plan_id == subject.plan_id:
        return None
    subject_field = "user" if isinstance(subject, User) else "organization"
    return PlanChange.objects.create(
        **{subject_field: subject},
        from_plan_id=from_plan_id,
        to_plan_id=subject.plan_id,
        changed_by=changed_by,
        note=note,
    )


def ensure_default_plans() -> None:
    """Create any of the default plans that are missing (never overwrites admins' figures)."""
    for fields in DEFAULT_PLANS:
        Plan.objects.get_or_create(slug=fields["slug"], defaults=fields)
