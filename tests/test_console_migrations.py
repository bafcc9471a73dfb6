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
        old = migrate([("analytics", "0008_analysts_group")])
        old.get_model("analytics", "RollupMark").objects.create(rolled_through=date(2026, 3, 1))
        old.get_model("analytics", "DailyUsage").objects.create(
            day=date(2026, 3, 1), feature="chat", model="gpt-4o"
        )
    finally:
        migrate(latest())
    assert not RollupMark.objects.exists() and not DailyUsage.objects.exists()
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_latency_rollups_counted_per_millisecond_become_buckets_and_keep_their_days(plans):
    """0013: each day's histograms per millisecond become 1% buckets, summed over model,
    feature and variant too (the raw rows may be gone: nothing is rolled up again)."""
    from iridium.analytics import histograms
    from iridium.analytics.models import DailyLatency

    day = date(2026, 3, 1)
    latencies = {"gpt-4o": [120, 130, 130, 900], "gpt-4o-mini": [80, 85, 2000]}
    try:
        old = migrate([("analytics", "0012_dailyusage_is_error")])
        for model, values in latencies.items():
            counts: dict = {}
            for value in values:
                counts[str(value)] = counts.get(str(value), 0) + 1
            old.get_model("analytics", "DailyLatency").objects.create(
                day=day, model=model, feature="chat", variant="test", latency=counts,
                first_token={"40": len(values)},
            )  # fmt: skip
        old.get_model("analytics", "RollupMark").objects.create(rolled_through=day)
    finally:
        migrate(latest())
    assert RollupMark.objects.get().rolled_through == day
    rows = {
        (r.model, r.by_model, r.by_feature, r.by_variant): r for r in DailyLatency.objects.all()
    }
    assert len(rows) == 2 * 4 + 4  # per model in 4 sets, every model summed in 4
    everything = rows["", False, False, False]
    assert (everything.feature, everything.variant) == ("", "")
    summed = histograms.Histogram()
    summed.add_packed(everything.latency)
    values = sorted(v for found in latencies.values() for v in found)
    assert summed.total == len(values)
    assert summed.percentile(0.5) == pytest.approx(values[len(values) // 2], rel=0.01)
    mini = histograms.Histogram()
    mini.add_packed(rows["gpt-4o-mini", True, True, True].latency)
    assert mini.percentile(0.0) == pytest.approx(80, rel=0.01)
    assert mini.percentile(1.0) == pytest.approx(2000, rel=0.01)
    assert rows["gpt-4o", True, False, False].first_token == [histograms.bucket(40), 4]


def test_conversations_seen_twice_keep_their_latest_day(plans):
    """0014: a combination found twice (two roll-ups at once) keeps one row, its latest day,
    before the unique index that the roll-up upserts through."""
    from iridium.analytics.models import ConversationSeenBy

    try:
        old = migrate([("analytics", "0013_dailylatency_log_buckets")])
        seen_by = old.get_model("analytics", "ConversationSeenBy")
        for last_day in (date(2026, 3, 1), date(2026, 3, 4), date(2026, 3, 2)):
            seen_by.objects.create(feature="chat", key="conversation-1", model="gpt-4o",
                                   last_day=last_day)  # fmt: skip
        seen_by.objects.create(feature="chat", key="conversation-2", model="gpt-4o",
                               last_day=date(2026, 3, 1))  # fmt: skip
    finally:
        migrate(latest())
    assert sorted(ConversationSeenBy.objects.values_list("key", "last_day")) == [
        ("conversation-1", date(2026, 3, 4)), ("conversation-2", date(2026, 3, 1))
    ]  # fmt: skip


def test_the_hours_are_rolled_up_again_to_see_the_conversations_last_calls(plans):
    """0016: the conversations seen before it have no last call, so the hours' mark is cleared
    (the hourly periods read the raw rows); the job's next run rolls up the hours again from
    yesterday's midnight and gives the conversations of those hours their last call."""
    from datetime import timedelta

    from django.utils import timezone

    from iridium.analytics import rollups
    from iridium.analytics.models import ConversationSeen
    from tests import factories

    now = timezone.now()
    call = now - timedelta(hours=2)
    factories.create_generations([{"created_at": call, "session_id": "s-1", "feature": "chat"}])
    hour = rollups.hour_start(now)
    try:
        old = migrate([("analytics", "0015_hourly_rollups")])
        old.get_model("analytics", "RollupMark").objects.create(
            rolled_through=timezone.localdate(now) - timedelta(days=1),
            hours_from=hour - timedelta(hours=3),
            rolled_until=hour,
        )
        old.get_model("analytics", "ConversationSeen").objects.create(
            feature="chat", key="s-1", last_day=timezone.localdate(call)
        )
    finally:
        migrate(latest())
    mark = RollupMark.objects.get()
    assert (mark.hours_from, mark.rolled_until) == (None, None)
    assert ConversationSeen.objects.get(key="s-1").last_call_at is None
    assert rollups.parts(hour - timedelta(hours=3)).hours is None  # the raw rows, meanwhile
    rollups.rollup_new_hours(now=now)
    assert ConversationSeen.objects.get(key="s-1").last_call_at == call


def test_the_latency_rollups_gain_their_rows_per_plan_and_organization_from_the_raw_rows(
    plans, organization
):
    """0017 and 0019: the rows rolled up before them are sums over every plan and organization;
    the rows per plan (0017) and per organization (0019) are made from the raw rows of each day
    and hour rolled up, as the roll-up makes them now. A day whose raw rows are gone keeps its
    sums and gains nothing. Backwards, 0019 deletes the rows per organization only, and 0018
    drops its columns."""
    from datetime import timedelta

    from django.utils import timezone

    from iridium.accounts.models import Plan
    from iridium.ai.models import Generation
    from iridium.analytics import rollups
    from iridium.analytics.models import DailyLatency, HourlyLatency
    from tests import factories

    now = timezone.now()
    yesterday = timezone.localdate(now) - timedelta(days=1)
    purged = yesterday - timedelta(days=5)
    hour = rollups.hour_start(now) - timedelta(hours=1)
    free, pro = Plan.objects.get(slug="free"), Plan.objects.get(slug="pro")
    midnight, _ = rollups._day_bounds(yesterday)
    specs = [
        {
            "created_at": when + timedelta(minutes=index),
            "plan": [free, pro, None][index % 3],
            "organization": [organization, None][index // 2 % 2],
            "model": ["gpt-4o", "gpt-4o-mini"][index % 2],
            "latency_ms": float(100 + 37 * index),
            "time_to_first_token_ms": None if index % 4 == 0 else float(20 + index),
        }
        for when in (midnight + timedelta(hours=12), hour)
        for index in range(12)
    ]
    factories.create_generations(specs)
    try:
        old = migrate([("analytics", "0016_conversationseen_last_call")])
        for day in (yesterday, purged):
            old.get_model("analytics", "DailyLatency").objects.create(
                day=day, model="", by_model=False, by_feature=False, by_variant=False,
                latency=[100, 1], first_token=[],
            )  # fmt: skip
        old.get_model("analytics", "HourlyLatency").objects.create(
            hour=hour, day=timezone.localdate(hour), model="", by_model=False, by_feature=False,
            by_variant=False, latency=[100, 1], first_token=[],
        )  # fmt: skip
    finally:
        migrate(latest())

    def kept(rows):
        return sorted(
            (r.model, r.feature, r.variant, r.plan_id or 0, r.organization_id or 0, r.by_model,
             r.by_feature, r.by_variant, r.by_plan, r.by_organization, r.latency, r.first_token)
            for r in rows
        )  # fmt: skip

    successful = Generation.objects.filter(cache_hit=False, is_error=False)
    start, end = rollups._day_bounds(yesterday)
    day_rows = successful.filter(created_at__gte=start, created_at__lt=end)
    hour_rows = successful.filter(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))
    for made_by, plan_rows, organization_rows, size in [
        ("0017", {"by_plan": True, "by_organization": False}, None, 3 * 3 * 4),
        # (2 models, and all) x (2 plans and none, and all) x (feature and variant, each kept
        # or summed) x (an organization and none)
        ("0019", None, {"by_organization": True}, 3 * 4 * 4 * 2),
    ]:
        wanted_here = plan_rows or organization_rows
        for table, rows, when in [(DailyLatency, day_rows, {"day": yesterday}),
                                  (HourlyLatency, hour_rows, {"hour": hour})]:  # fmt: skip
            wanted = [
                r
                for r in rollups.latency_rows(rows, table, **when)
                if all(getattr(r, name) == on for name, on in wanted_here.items())
            ]
            if table is DailyLatency:
                assert len(wanted) == size, made_by
            assert kept(table.objects.filter(**when, **wanted_here)) == kept(wanted), made_by
    # The sums made before stay as they were, the purged day's too, and gain nothing.
    summed = {"by_plan": False, "by_organization": False}
    assert DailyLatency.objects.filter(**summed).count() == 2
    assert not DailyLatency.objects.filter(day=purged).exclude(**summed).exists()
    assert HourlyLatency.objects.get(**summed).latency == [100, 1]
    try:
        migrate([("analytics", "0018_latency_rollups_keep_organization")])
        assert not DailyLatency.objects.filter(by_organization=True).exists()
        assert DailyLatency.objects.filter(by_plan=True).count() == 3 * 3 * 4
        before = migrate([("analytics", "0017_latency_rollups_keep_plan")])
        assert before.get_model("analytics", "DailyLatency").objects.count() == 3 * 3 * 4 + 2
    finally:
        migrate(latest())
