"""Sum the generation record by day for the console, by hand (the periodic job does it)."""

from django.core.management.base import BaseCommand, CommandError

from iridium.analytics.rollups import KEEP_DAYS, rollup


class Command(BaseCommand):
    help = "Rebuild the daily roll-ups of the last complete days (the console stays exact)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=KEEP_DAYS)

    def handle(self, *args, days, **options):
        if days < 1:
            raise CommandError("--days must be at least 1.")
        written = rollup(days=days)
        self.stdout.write(f"Rolled up {days} day(s) into {written} row(s).")
