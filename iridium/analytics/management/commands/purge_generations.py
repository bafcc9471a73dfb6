"""Retention: drop old prompts and answers from the generation record, then old rows.

Deletes in small batches, each its own short transaction, so the table is never locked for long
and the web workers keep writing meanwhile. The periodic job runs it daily.
"""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from iridium.ai.models import Generation, Span

BATCH = 5000


class Command(BaseCommand):
    help = "Delete generation content and rows older than the retention periods, in batches."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=settings.ANALYTICS_RETENTION_DAYS,
            help="Delete generation and span rows older than DAYS "
            f"(default {settings.ANALYTICS_RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--content-older-than",
            type=int,
            default=settings.ANALYTICS_CONTENT_RETENTION_DAYS,
            help="Clear prompts and answers older than DAYS "
            f"(default {settings.ANALYTICS_CONTENT_RETENTION_DAYS}).",
        )
        parser.add_argument("--batch", type=int, default=BATCH)
        parser.add_argument(
            "--pause", type=float, default=0.0, help="Seconds to rest between batches."
        )

    def handle(self, *args, older_than, content_older_than, batch, pause, **options):
        if older_than < 1 or content_older_than < 0 or batch < 1:
            raise CommandError("Days must be positive and the batch at least 1.")
        now = timezone.now()
        cleared = self._in_batches(
            Generation.objects.filter(
                created_at__lt=now - timezone.timedelta(days=content_older_than)
            ).exclude(input=None, output=None),
            lambda ids: Generation.objects.filter(pk__in=ids).update(input=None, output=None),
            batch,
            pause,
        )
        cutoff = now - timezone.timedelta(days=older_than)
        deleted = self._in_batches(
            Generation.objects.filter(created_at__lt=cutoff),
            lambda ids: Generation.objects.filter(pk__in=ids).delete()[0],
            batch,
            pause,
        )
        spans = self._in_batches(
            Span.objects.filter(created_at__lt=cutoff),
            lambda ids: Span.objects.filter(pk__in=ids).delete()[0],
            batch,
            pause,
        )
        self.stdout.write(
            f"Cleared the content of {cleared} generation(s); deleted {deleted} generation(s) "
            f"and {spans} span(s) older than {older_than} days."
        )

    @staticmethod
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
