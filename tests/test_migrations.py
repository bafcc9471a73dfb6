"""Migrations that move data, run backwards and forwards on the test database (which is left
fully migrated, whatever happens)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from iridium.ai.models import BudgetWarning, Generation, Span
from iridium.jobs.models import PeriodicJob

pytestmark = pytest.mark.django_db(transaction=True)

# Before Generation, Span and BudgetWarning moved from analytics to ai.
BEFORE_THE_MOVE = [
    ("ai", "0002_flagoverride"),
    ("analytics", "0005_dailylatency_rollupmark_dailyusage"),
]
MOVED = {"generation": Generation, "span": Span, "budgetwarning": BudgetWarning}


def migrate(targets):
    """Migrate the database to `targets`; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_the_generation_records_keep_their_rows_and_content_types_when_moved_to_ai(
    user, organization, plans
):
    content_types = {
        name: ContentType.objects.get_for_model(model).pk for name, model in MOVED.items()
    }
    generation = {
        "created_at": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        "trace_id": "conversation-1",
        "span_id": "span-before-the-move",
        "parent_id": "root",
        "user_id": user.pk,
        "organization_id": organization.pk,
        "plan_id": plans["pro"].pk,
        "feature": "chat",
        "provider": "openai",
        "model": "gpt-4o",
        "step": 2,
        "input_tokens": 120,
        "output_tokens": 45,
        "total_cost_usd": Decimal("0.0012345678"),
        "latency_ms": 812.5,
        "time_to_first_token_ms": 140.0,
        "cache_hit": True,
        "saved_cost_usd": Decimal("0.0009"),
        "estimated_input_tokens": 100,
        "estimate_ratio": 1.2,
        "flags": {"advanced-ai-model": True},
        "properties": {"conversationId": 1, "plan": "pro"},
        "input": [{"role": "user", "content": "hello"}],
        "output": [{"role": "assistant", "content": "hi"}],
    }
    span = {
        "created_at": datetime(2026, 3, 1, 12, 30, 1, tzinfo=UTC),
        "trace_id": "conversation-1",
        "span_id": "tool-before-the-move",
        "name": "tool:search_knowledge_base",
        "user_id": user.pk,
        "feature": "chat",
        "latency_ms": 3.5,
        "input_state": {"query": "password"},
    }
    warning = {
        "user_id": user.pk,
        "period": "2026-03",
        "percent": 80,
        "budget_usd": Decimal("1.00"),
        "spent_usd": Decimal("0.812345"),
    }
    try:
        before = migrate(BEFORE_THE_MOVE)
        historical_content_type = before.get_model("contenttypes", "ContentType")
        assert {
            name: historical_content_type.objects.get(pk=pk).app_label
            for name, pk in content_types.items()
        } == dict.fromkeys(MOVED, "analytics")
        generation_pk = before.get_model("analytics", "Generation").objects.create(**generation).pk
        span_pk = before.get_model("analytics", "Span").objects.create(**span).pk
        warning_pk = before.get_model("analytics", "BudgetWarning").objects.create(**warning).pk
    finally:
        migrate(latest())
        ContentType.objects.clear_cache()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []

    moved = Generation.objects.get(pk=generation_pk)
    assert {field: getattr(moved, field) for field in generation} == generation
    moved_span = Span.objects.get(pk=span_pk)
    assert {field: getattr(moved_span, field) for field in span} == span
    moved_warning = BudgetWarning.objects.get(pk=warning_pk)
    assert {field: getattr(moved_warning, field) for field in warning} == warning
    # The same content type rows (so the permissions granted on them) now belong to ai.
    for name, model in MOVED.items():
        assert ContentType.objects.get_for_model(model).pk == content_types[name]
        assert list(ContentType.objects.filter(model=name).values_list("app_label", flat=True)) == [
            "ai"
        ]


def test_the_retention_job_keeps_its_schedule_and_history_when_it_moves_to_ai():
    before_path = "iridium.analytics.tasks.purge_generations"
    after_path = "iridium.ai.tasks.purge_generations"
    history = {
        "every_seconds": 86400,
        "next_run_at": datetime(2026, 3, 2, 4, 0, tzinfo=UTC),
        "last_finished_at": datetime(2026, 3, 1, 4, 0, 3, tzinfo=UTC),
        "last_outcome": "successful",
        "runs": 41,
    }
    try:
        before = migrate([("ai", "0007_pricedata"), ("jobs", "0001_periodic_jobs")])
        before.get_model("jobs", "PeriodicJob").objects.create(task_path=before_path, **history)
    finally:
        migrate(latest())
    job = PeriodicJob.objects.get()
    assert job.task_path == after_path
    assert {field: getattr(job, field) for field in history} == history
    try:
        back = migrate([("ai", "0007_pricedata"), ("jobs", "0001_periodic_jobs")])
        paths = back.get_model("jobs", "PeriodicJob").objects.values_list("task_path", flat=True)
        assert list(paths) == [before_path]
    finally:
        migrate(latest())
