"""`manage.py worker`: runs background tasks (django-tasks-db's worker loop) and keeps the
periodic schedule (iridium.jobs.schedule). Run any number, on any host: each job still runs once
per period."""

from django_tasks_db.management.commands import db_worker

from iridium.jobs.schedule import Scheduler


class Command(db_worker.Command):
    help = "Run background tasks and the periodic schedule (alerts, roll-ups, retention)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-schedule",
            action="store_false",
            dest="schedule",
            help="Only run tasks; leave the periodic schedule to other workers.",
        )

    def handle(self, *args, schedule=True, **options):
        if schedule:
            Scheduler().start()
        return super().handle(*args, **options)
