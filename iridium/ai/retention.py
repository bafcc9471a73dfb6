"""Retention of the generation record: prompts and answers are cleared after
ANALYTICS_CONTENT_RETENTION_DAYS, generation and span rows deleted after
ANALYTICS_RETENTION_DAYS. The AI service writes these rows, so it is the one to clear and delete
them (the console only reads them; its daily roll-ups keep the figures of deleted days).

Deletes in small batches, each its own short transaction, so the table is never locked for long
and the web workers keep writing meanwhile. The periodic job (`iridium.ai.tasks`) runs it daily,
`manage.py purge_generations` by hand.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from .models import Generation, Span

BATCH = 5000


@dataclass(frozen=True)
class Purged:
    cleared: int  # generations whose prompts and answers were cleared
    generations: int  # generation rows deleted
    spans: int  # span rows deleted
    older_than: int

    def __str__(self):
        return (
            f"Cleared the content of {self.cleared} generation(s); deleted {self.generations} "
            f"generation(s) and {self.spans} span(s) older than {self.older_than} days."
        )


def purge(*, older_than: int, content_older_than: int, batch: int = BATCH, pause: float = 0.0):
    """Clear the content older than `content_older_than` days, then delete the rows older than
    `older_than` days, `batch` rows at a time with `pause` seconds between batches."""
    if older_than < 1 or content_older_than < 0 or batch < 1:
        raise ValueError("Days must be positive and the batch at least 1.")
    now = timezone.now()
    cleared = _in_batches(
        Generation.objects.filter(created_at__lt=now - timedelta(days=content_older_than)).exclude(
            input=None, output=None
        ),
        lambda ids: Generation.objects.filter(pk__in=ids).update(input=None, output=None),
        batch,
        pause,
    )
    cutoff = now - timedelta(days=older_than)
    generations = _in_batches(
        Generation.objects.filter(created_at__lt=cutoff),
        lambda ids: Generation.objects.filter(pk__in=ids).delete()[0],
        batch,
        pause,
    )
    spans = _in_batches(
        Span.objects.filter(created_at__lt=cutoff),
        lambda ids: Span.objects.filter(pk__in=ids).delete()[0],
        batch,
        pause,
    )
    return Purged(cleared=cleared, generations=generations, spans=spans, older_than=older_than)


def _in_batches(queryset, act, batch, pause) -> int:
    done = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return done
        act(ids)
        done += len(ids)
        if pause:
            time.sleep(pause)
