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
    role = models.CharField(max_length=10, choices=Role)

    class Meta(StreamedAnswer.Meta):
        constraints = [
            # However many workers take a "send" at once, one answer is written at a time.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(status="streaming"),
                name="one_answer_being_written_per_conversation",
            )
        ]

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
        return "Assistant" if self.is_answer else "You"
