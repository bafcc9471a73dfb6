from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from iridium.infra.heartbeat import Kind

from . import protocol, runs


def interrupted_after() -> timedelta:
    """A message still "being written" whose run has not been heard of for this long
    (ANSWER_STALE_SECONDS) was interrupted (its worker stopped): it is marked failed, so that it
    can be retried. Its worker's heartbeat touches it every `heartbeat_seconds()` while it is
    written, whether or not tokens arrive, so a live answer is never this quiet."""
    return timedelta(seconds=settings.ANSWER_STALE_SECONDS)


def heartbeat_seconds() -> float:
    return min(5.0, settings.ANSWER_STALE_SECONDS / 3)


def _beat(answers: dict[tuple[type, int], None]) -> None:
    by_model = defaultdict(list)
    for model, pk in answers:
        by_model[model].append(pk)
    now = timezone.now()
    for model, pks in by_model.items():
        model.objects.filter(pk__in=pks, status=model.Status.STREAMING).update(updated_at=now)


# Answers being written by this worker (iridium.infra.heartbeat): one UPDATE per kind of answer.
ANSWERS = Kind("answer(s) being written", _beat, heartbeat_seconds)


class StreamedAnswer(models.Model):
    """A message that may be an AI answer streamed to the page: chat messages, ticket messages,
    creations.

    iridium.live.writer fills it as the answer streams and saves it when the answer ends,
    however it ends. Every such message is shown by one template (live/_message.html), on the
    page and in the frames that bring it live.
    """

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STREAMING = "streaming", "Being written"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Failed"

    INTERRUPTED = "The answer was interrupted. Retry to get a new one."
    # How messages are labelled: the assistant's answers, and a person's own messages to them.
    ASSISTANT = "Assistant"
    YOU = "You"

    content = models.TextField(blank=True)
    # AI answers rendered from Markdown and sanitised once, when the answer completes.
    html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.COMPLETE)
    error = models.CharField(max_length=300, blank=True)
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=10, null=True, blank=True)
    from_cache = models.BooleanField(default=False)
    tool_events = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "pk"]

    # --- How the message is shown (live/_message.html) ----------------------------------------

    @property
    def is_answer(self) -> bool:
        """An AI answer (the rest are people's messages)."""
        return True

    # The actions a saved answer offers (Retry, Copy answer, feedback): not those of messages
    # no table holds (iridium.live.rendering.PageMessage).
    offers_actions = True

    @property
    def feedback_comment_chars(self) -> int:
        """The longest feedback comment the socket takes (the comment box's maxlength)."""
        return protocol.FEEDBACK_COMMENT_CHARS

    @property
    def author_label(self) -> str:
        return self.ASSISTANT

    @property
    def author_username(self) -> str:
        """A person's username, shown as "You" to that person; empty for the assistant."""
        return ""

    @property
    def author_kind(self) -> str:
        """A finer kind of author, where an app has one (support: customer or agent)."""
        return ""

    def frame(self) -> dict:
        """The message's state as the page's script keeps it."""
        return {
            "id": self.pk,
            "content": self.content,
            "status": self.status,
            "error": self.error,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": str(self.cost_usd) if self.cost_usd is not None else None,
            "from_cache": self.from_cache,
            "tools": self.tool_events,
            "role": "assistant" if self.is_answer else "user",
        }

    # --- Answers whose worker stopped ---------------------------------------------------------

    @classmethod
    def mark_interrupted(cls, answers: models.QuerySet, *, key: str) -> int:
        """Answers among `answers` left "being written" by a worker that stopped become failed
        ones (with Retry). Not while this process is writing one of them (under `key`)."""
        if runs.running(key):
            return 0
        stale = timezone.now() - interrupted_after()
        return answers.filter(status=cls.Status.STREAMING, updated_at__lt=stale).update(
            status=cls.Status.ERROR, error=cls.INTERRUPTED
        )

    @classmethod
    def start_one_at_a_time(cls, write, answers: models.QuerySet, *, key: str):
        """`write()` in one transaction; it saves a new answer "being written" among `answers`
        (those of one conversation or ticket), with whatever goes with it, and its result is
        returned. The database keeps one answer being written per conversation or ticket (the
        `one_answer_being_written_per_…` constraints), so two workers starting one at once
        cannot both write it: the second gets AnswerBeingWritten. An answer left "being
        written" by a worker that stopped is marked interrupted and `write()` tried once more,
        so a start costs no more than its own writes unless there is one to mark."""
        for last_try in (False, True):
            try:
                with transaction.atomic():
                    return write()
            except IntegrityError as error:
                # Which constraint failed, asked of the rows: the databases name it differently
                # (SQLite names the columns of the unique index, not the constraint).
                if not answers.filter(status=cls.Status.STREAMING).exists():
                    raise
                if last_try or not cls.mark_interrupted(answers, key=key):
                    raise AnswerBeingWritten from error
        raise AssertionError("unreachable")  # pragma: no cover


class AnswerBeingWritten(Exception):
    """Another answer of the same conversation or ticket is being written."""
