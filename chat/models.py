from django.conf import settings
from django.db import models

from iridium.live.models import StreamedAnswer


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=120, default="New conversation")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]

    def __str__(self):
        return self.title

    @property
    def ai_session_id(self) -> str:
        """What groups the traces of its answers (PostHog's `$ai_session_id`)."""
        return f"conversation-{self.pk}"


class Message(StreamedAnswer):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )

    class Version(models.TextChoices):
        LATEST = "latest", "Latest"  # shown, and in what the model is sent
        EARLIER = "earlier", "Earlier"  # an earlier answer of its turn (Regenerate): < 1/2 >
        REPLACED = "replaced", "Replaced"  # replaced (an edited question and what followed it)

    role = models.CharField(max_length=10, choices=Role)
    # Regenerate keeps the answer it replaces as an earlier version of the turn; editing a
    # question keeps it and everything after it as replaced. Nothing is deleted.
    version = models.CharField(max_length=10, choices=Version, default=Version.LATEST)
    # The first message of its turn, for a later version (an answer regenerated, a question
    # edited); null for a first version.
    version_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(StreamedAnswer.Meta):
        constraints = [
            # However many workers take a "send" at once, one answer is written at a time.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(status="streaming"),
                name="one_answer_being_written_per_conversation",
            )
        ]
        indexes = [models.Index(fields=["conversation", "version", "created_at"])]

    def __str__(self):
        return f"{self.role}: {self.content[:40]}"

    ai_feature = "chat"

    @property
    def is_answer(self) -> bool:
        return self.role == self.Role.ASSISTANT

    @property
    def ai_session_id(self) -> str:
        return f"conversation-{self.conversation_id}"

    @property
    def trace_id(self) -> str:
        """The trace of this answer (one turn of its conversation)."""
        return f"{self.ai_session_id}-{self.pk}"

    @property
    def author_label(self) -> str:
        # Only its owner sees a conversation.
        return self.ASSISTANT if self.is_answer else self.YOU

    @property
    def turn(self) -> int:
        """What the versions of one answer share: the id of the turn's first answer."""
        return self.version_of_id or self.pk

    # Set by chat.versions for the page: this version's number and how many its turn has.
    version_number = 1
    version_count = 1
    # Set by chat.answers on a new answer: the failed answers it replaces (the page drops them).
    replaced_ids: list[int] = []

    @property
    def can_be_edited(self) -> bool:
        """A person's question can be edited and sent again (the answers after it replaced)."""
        return not self.is_answer
