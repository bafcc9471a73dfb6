"""Evaluate every active alert rule once, by hand (the periodic job does it every minute)."""

from django.core.management.base import BaseCommand

from iridium.analytics.alerts import evaluate_all


class Command(BaseCommand):
    help = "Evaluate the alert rules; store, email and post the ones that fire."

    def handle(self, *args, **options):
        fired = evaluate_all()
        for alert in fired:
            self.stdout.write(f"Fired: {alert.rule.name}: {alert.message}")
        self.stdout.write(f"{len(fired)} alert(s) fired.")
