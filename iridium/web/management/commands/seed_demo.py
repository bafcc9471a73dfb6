"""`manage.py seed_demo`: the demo data of iridium.web.demo (refused with DEBUG off)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iridium.web import demo


class Command(BaseCommand):
    help = (
        "Create the demo admin, one user on each plan, an organization, a support agent and "
        "30 days of AI history for the analytics console (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with DEBUG off (the demo passwords are public: not for real sites).",
        )

    def handle(self, *args, allow_production=False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "seed_demo creates accounts with public passwords; it runs only with DEBUG on "
                "(or pass --allow-production)."
            )
        self.stdout.write(f"Demo data ready: {demo.seed()}")
