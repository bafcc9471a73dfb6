"""The console's migrations, run backwards and forwards on the test database (which is left
fully migrated, whatever happens)."""

from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from iridium.analytics import access
from iridium.analytics.models import DailyUsage, RollupMark

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_the_analysts_group_is_made_and_earlier_rollups_are_forgotten(plans):
    try:
        before = migrate([("analytics", "0007_console_permissions")])
        assert (
            not before.get_model("auth", "Group")
            .objects.filter(name=access.ANALYSTS_GROUP)
            .exists()
        )
        migrate([("analytics", "0008_analysts_group")])
        group = Group.objects.get(name=access.ANALYSTS_GROUP)
        assert set(group.permissions.values_list("codename", flat=True)) == {"view_console"}
        # Days rolled up without tokens and variant are forgotten, to be rolled up again.
        RollupMark.objects.create(rolled_through=date(2026, 3, 1))
        old = migrate([("analytics", "0008_analysts_group")]).get_model("analytics", "DailyUsage")
        old.objects.create(day=date(2026, 3, 1), feature="chat", model="gpt-4o")
    finally:
        migrate(latest())
    assert not RollupMark.objects.exists() and not DailyUsage.objects.exists()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
