"""Retention of the generation record, by hand (the daily periodic job does it):
iridium.ai.retention."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iridium.ai import retention


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
        parser.add_argument("--batch", type=int, default=retention.BATCH)
        parser.add_argument(
            "--pause", type=float, default=0.0, help="Seconds to rest between batches."
        )

    def handle(self, *args, older_than, content_older_than, batch, pause, **options):
        try:
            purged = retention.purge(
                older_than=older_than,
                content_older_than=content_older_than,
                batch=batch,
                pause=pause,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(str(purged))
