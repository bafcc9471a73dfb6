"""Retention of the generation record (iridium.ai.retention): the AI service, which writes the
rows, clears and deletes them, daily and by hand; the console only reads them."""

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks.base import Task

from iridium.ai.models import Generation, Span
from iridium.analytics import tasks as analytics_tasks
from tests import factories

RETENTION_JOB = "iridium.ai.tasks.purge_generations"


def make_generation(days_ago, **extra):
    """A chat call made `days_ago`, with its content."""
    return factories.create_generation(
        created_at=timezone.now() - timedelta(days=days_ago),
        trace_id="t",
        latency_ms=1,
        input=[{"role": "user", "content": "old prompt"}],
        output=[{"role": "assistant", "content": "old answer"}],
        **extra,
    )


def old_span():
    return factories.span(
        created_at=timezone.now() - timedelta(days=500), trace_id="t", name="tool:x", latency_ms=1
    )


def test_purge_clears_old_content_then_deletes_old_rows_in_batches(db, capsys):
    recent = make_generation(1)
    middle = make_generation(60)
    old = [make_generation(500) for _ in range(7)]
    old_span()
    call_command("purge_generations", "--older-than", "400", "--content-older-than", "30",
                 "--batch", "3")  # fmt: skip
    assert "deleted 7 generation(s) and 1 span(s)" in capsys.readouterr().out
    recent.refresh_from_db()
    middle.refresh_from_db()
    assert recent.input and recent.output
    assert middle.input is None and middle.output is None
    assert not Generation.objects.filter(pk__in=[g.pk for g in old]).exists()
    assert not Span.objects.exists()


def test_purge_refuses_nonsense(db):
    with pytest.raises(CommandError):
        call_command("purge_generations", "--older-than", "0")


def test_the_daily_job_is_the_ai_services_and_keeps_the_retention_settings(db, settings):
    assert settings.PERIODIC_JOBS[RETENTION_JOB] == 86400
    settings.ANALYTICS_CONTENT_RETENTION_DAYS = 30
    settings.ANALYTICS_RETENTION_DAYS = 400
    recent, middle, old = make_generation(1), make_generation(60), make_generation(500)
    old_span()
    outcome = import_string(RETENTION_JOB).call()
    assert outcome == (
        "Cleared the content of 2 generation(s); deleted 1 generation(s) and 1 span(s) older "
        "than 400 days."
    )
    middle.refresh_from_db()
    recent.refresh_from_db()
    assert middle.input is None and recent.input
    assert not Generation.objects.filter(pk=old.pk).exists() and not Span.objects.exists()


def test_the_console_never_writes_the_generation_record(db):
    """Every periodic job and command of analytics, run over rows old enough for retention,
    leaves the AI service's tables as they were: no INSERT, UPDATE or DELETE reaches them."""
    ai_tables = {model._meta.db_table for model in apps.get_app_config("ai").get_models()}
    make_generation(500)
    make_generation(60)
    old_span()
    jobs = [
        getattr(analytics_tasks, name)
        for name in dir(analytics_tasks)
        if isinstance(getattr(analytics_tasks, name), Task)
    ]
    commands = sorted(
        path.stem
        for path in (Path(analytics_tasks.__file__).parent / "management/commands").glob("*.py")
        if not path.stem.startswith("_")
    )
    assert len(jobs) >= 2 and "rollup_generations" in commands
    assert {job.module_path for job in jobs} & set(settings.PERIODIC_JOBS)
    with CaptureQueriesContext(connection) as queries:
        for job in jobs:
            job.call()
        for command in commands:
            call_command(command, stdout=StringIO())
    writes = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)
    written = {match.group(2) for query in queries if (match := writes.match(query["sql"]))}
    assert written and sorted(written & ai_tables) == []
    assert Generation.objects.count() == 2 and Span.objects.count() == 1
