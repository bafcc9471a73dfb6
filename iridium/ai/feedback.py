"""People's thumbs up or down (with an optional comment) on an answer, one per person and
answer (its trace), changeable by them. Apps decide who may rate which answer (their access
rules) and hand over the answer's trace; this keeps the feedback and tells PostHog.

PostHog's LLM analytics documents user feedback as survey responses linked to a trace: a
`survey sent` event per question answered, with `$survey_id`, the response, `$ai_trace_id` and
a `$survey_submission_id` that joins one response's events (a change sends the same id again, so
it replaces the response). The thumbs answer is 1 (up) or 2 (down); the comment answers the
follow-up question, and is left out in privacy mode, like prompts."""

from django.conf import settings
from django.db import transaction

from . import posthog
from .callers import load_caller
from .models import Feedback, Generation
from .records import Caller

SURVEY_SENT = "survey sent"
RATING_VALUES = {Feedback.Rating.UP: 1, Feedback.Rating.DOWN: 2}
MAX_COMMENT = 2000


def give(*, user, trace_id: str, session_id: str, feature: str, model: str, rating: str,
         comment: str = "") -> Feedback:  # fmt: skip
    """Keep `user`'s feedback on the answer of `trace_id` (replacing theirs, if any) and send it
    to PostHog. The caller has checked that the answer was for `user`."""
    caller = load_caller(user)
    first = (
        Generation.objects.filter(trace_id=trace_id)
        .order_by("created_at", "pk")
        .values("variant", "privacy_mode")
        .first()
    )
    privacy = (
        (first is not None and first["privacy_mode"])
        or (caller.plan is not None and caller.plan.privacy_mode_forced)
        or feature in settings.AI_PRIVATE_FEATURES
    )
    with transaction.atomic():
        feedback, _ = Feedback.objects.update_or_create(
            user=user,
            trace_id=trace_id,
            defaults={
                "session_id": session_id,
                "feature": feature,
                "model": model,
                "variant": first["variant"] if first else "",
                "rating": rating,
                "comment": comment.strip(),
                "privacy_mode": privacy,
            },
        )
    for event in events(feedback, caller):
        posthog.capture(event)
    return feedback


def events(feedback: Feedback, caller: Caller) -> list[dict]:
    """The `survey sent` events of a feedback: its thumbs, then its comment (outside privacy
    mode); none without a survey to answer."""
    survey = settings.POSTHOG_FEEDBACK_SURVEY_ID
    if not survey:
        return []
    comment = feedback.comment if not feedback.privacy_mode else ""
    common = {
        "$survey_id": survey,
        "$ai_trace_id": feedback.trace_id,
        "$survey_submission_id": str(feedback.submission_id),
        "feature": feedback.feature,
        "model": feedback.model,
        **({"variant": feedback.variant} if feedback.variant else {}),
        "privacyMode": feedback.privacy_mode,
    }
    if caller.user is None:
        common["$process_person_profile"] = False
    answers = [
        {_response_key(settings.POSTHOG_FEEDBACK_RATING_QUESTION_ID, 0): RATING_VALUES[
            feedback.rating]}
    ]  # fmt: skip
    if comment:
        answers.append({_response_key(settings.POSTHOG_FEEDBACK_COMMENT_QUESTION_ID, 1): comment})
    # One event per question answered; the last completes the response.
    return [
        {
            "event": SURVEY_SENT,
            "distinct_id": caller.distinct_id(feedback.trace_id),
            "properties": {**common, **answer, "$survey_completed": index == len(answers) - 1},
            "groups": caller.groups,
        }
        for index, answer in enumerate(answers)
    ]


def _response_key(question_id: str, index: int) -> str:
    """A question's response property: by its id where configured, else by its index."""
    if question_id:
        return f"$survey_response_{question_id}"
    return "$survey_response" if index == 0 else f"$survey_response_{index}"


def ratings_of(user, trace_ids) -> dict[str, Feedback]:
    """`user`'s feedback on the answers of `trace_ids`, by trace id."""
    if user is None or not user.is_authenticated:
        return {}
    return {f.trace_id: f for f in Feedback.objects.filter(user=user, trace_id__in=list(trace_ids))}
