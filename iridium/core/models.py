from django.db import models


class StreamedAnswer(models.Model):
    """A message that may be an AI answer streamed to the page: chat messages, ticket messages.

    `iridium.core.answering.write_answer` fills it as the answer streams and saves it when the
    answer ends, however it ends.
    """

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STREAMING = "streaming", "Being written"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Failed"

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

    def frame(self) -> dict:
        """The message as the page's JavaScript receives it."""
        return {
            "id": self.pk,
            "content": self.content,
            "html": self.html,
            "status": self.status,
            "error": self.error,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": str(self.cost_usd) if self.cost_usd is not None else None,
            "from_cache": self.from_cache,
            "tools": self.tool_events,
            **self.frame_extra(),
        }

    def frame_extra(self) -> dict:
        return {}
