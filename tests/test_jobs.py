"""Periodic work without cron: `manage.py worker` processes run the tasks and keep the schedule
(settings.PERIODIC_JOBS) once across all of them, on SQLite (the embedded default) and on
PostgreSQL. An alert rule fires on schedule with nothing else running."""

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from iridium.analytics.models import FiredAlert
from iridium.jobs import schedule
from iridium.jobs.models import PeriodicJob
from tests import factories
from tests.helpers.production import ROOT, database_url, require_production_services

ALERTS = "iridium.analytics.tasks.evaluate_alerts"


def test_the_rows_follow_the_settings(db, settings):
    settings.PERIODIC_JOBS = {ALERTS: 60, "iridium.ai.tasks.purge_generations": 86400}
    schedule.sync_jobs()
    assert dict(PeriodicJob.objects.values_list("task_path", "every_seconds")) == (
        settings.PERIODIC_JOBS
    )
    settings.PERIODIC_JOBS = {ALERTS: 30}
    schedule.sync_jobs()
    jobs = {job.task_path: job for job in PeriodicJob.objects.all()}
    assert jobs[ALERTS].every_seconds == 30 and jobs[ALERTS].active
    assert not jobs["iridium.ai.tasks.purge_generations"].active


@pytest.mark.django_db(transaction=True)
def test_workers_ticking_at_once_enqueue_a_due_job_once(settings):
    require_production_services()  # row-level concurrency: PostgreSQL
    settings.PERIODIC_JOBS = {ALERTS: 60}
    schedule.sync_jobs()
    start = threading.Barrier(6)
    enqueued = []

    def worker():
        start.wait()
        try:
            enqueued.extend(schedule.run_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert enqueued == [ALERTS]
    assert DBTaskResult.objects.filter(task_path=ALERTS).count() == 1
    job = PeriodicJob.objects.get()
    assert job.next_run_at > timezone.now() + timedelta(seconds=50)
    assert schedule.run_due() == []  # not due again until its period has passed
    assert schedule.run_due(now=job.next_run_at) == [ALERTS]


def start_workers(environment, count):
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--no-reload", "--interval", "0.2"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def stop(workers):
    for process in workers:
        process.terminate()
    for process in workers:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def worker_environment(**variables):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "DB_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="iridium.settings",
        IRIDIUM_ENV_FILE="/nonexistent",
        ALERTS_EVERY_SECONDS="1",
        **variables,
    )
    return environment


@pytest.mark.django_db(transaction=True)
def test_alerts_fire_on_schedule_with_two_workers_on_postgresql(plans):
    require_production_services()
    rule = factories.spend_alert_that_fires()
    workers = start_workers(worker_environment(DATABASE_URL=database_url()), 2)
    try:
        deadline = time.monotonic() + 30
        while FiredAlert.objects.filter(rule=rule).count() < 3:
            assert time.monotonic() < deadline, "the alert did not fire on schedule"
            for process in workers:
                assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.2)
    finally:
        stop(workers)
    job = PeriodicJob.objects.get(task_path=ALERTS)
    assert job.last_outcome == PeriodicJob.Outcome.SUCCESSFUL
    # Once a second between two workers: never two runs in one period.
    fired = list(FiredAlert.objects.filter(rule=rule).order_by("fired_at"))
    gaps = [(b.fired_at - a.fired_at).total_seconds() for a, b in itertools.pairwise(fired)]
    assert all(gap > 0.8 for gap in gaps), gaps
    assert DBTaskResult.objects.filter(task_path=ALERTS, status="FAILED").count() == 0


SQLITE_SCRIPT = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from django.core.management import call_command
    from iridium.analytics.models import FiredAlert
    from iridium.jobs.models import PeriodicJob
    if sys.argv[1] == "set-up":
        call_command("migrate", verbosity=0)
        from tests import factories
        factories.spend_alert_that_fires()
    else:
        job = PeriodicJob.objects.filter(task_path="{alerts}").first()
        print(FiredAlert.objects.count(), job.last_outcome if job else "")
    """
).replace("{alerts}", ALERTS)


def test_alerts_fire_on_schedule_on_sqlite(tmp_path):
    environment = worker_environment(SQLITE_PATH=str(tmp_path / "iridium.sqlite3"))

    def run(step):
        result = subprocess.run(
            [sys.executable, "-c", SQLITE_SCRIPT, step],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    run("set-up")
    workers = start_workers(environment, 1)
    try:
        deadline = time.monotonic() + 40
        while True:
            fired, outcome = ([*run("count"), ""])[:2]
            if int(fired) >= 2 and outcome == "successful":
                break
            assert time.monotonic() < deadline, (fired, outcome)
            assert workers[0].poll() is None, workers[0].stderr.read().decode()
            time.sleep(0.5)
    finally:
        stop(workers)
