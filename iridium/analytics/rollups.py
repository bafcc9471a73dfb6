"""Daily roll-ups of the generation record, so that the console reads a few thousand rows
instead of millions. Complete days are summed by the periodic job `rollup_generations` (hourly;
it works once a day, iridium.analytics.tasks); the console adds the raw rows of the days after
the last rolled-up day, so every figure is exact."""

from datetime import date, datetime, timedelta
from itertools import product

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from iridium.ai.models import Generation

from . import histograms
from .models import ConversationSeen, ConversationSeenBy, DailyLatency, DailyUsage, RollupMark

KEEP_DAYS = 90

USAGE_SUMS = {
    "requests": Count("id"),
    "calls": Count("id", filter=Q(cache_hit=False)),
    "errors": Count("id", filter=Q(is_error=True)),
    "cache_hits": Count("id", filter=Q(cache_hit=True)),
    "unpriced": Count("id", filter=Q(total_cost_usd__isnull=True, is_error=False)),
    "spend": Sum("total_cost_usd"),
    "saved": Sum("saved_cost_usd"),
    "tokens_in": Sum("input_tokens"),
    "tokens_out": Sum("output_tokens"),
    "estimated": Sum(
        "estimated_input_tokens",
        filter=Q(cache_hit=False, is_error=False, estimated_input_tokens__gt=0),
    ),
    "counted": Sum(
        "input_tokens", filter=Q(cache_hit=False, is_error=False, estimated_input_tokens__gt=0)
    ),
}
USAGE_KEYS = ["feature", "model", "plan_id", "organization_id", "user_id", "variant", "is_error"]
# A conversation, ticket or creation: its session, or the trace of a call that stands alone.
SESSION_OR_TRACE = Coalesce(NullIf("session_id", Value("")), "trace_id")
SEEN_KEYS = ["feature", "key", "model", "plan_id", "organization_id", "user_id", "variant",
             "is_error"]  # fmt: skip
CHUNK = 2000


def rolled_through() -> date | None:
    mark = RollupMark.objects.first()
    return mark.rolled_through if mark else None


def rollup(*, days: int = KEEP_DAYS, today: date | None = None) -> int:
    """Rebuild the roll-ups of the last `days` complete days, keeping those of the days before
    (up to KEEP_DAYS). Returns the rows written."""
    today = today or timezone.now().date()
    # Days the roll-ups do not have yet are rolled up too, whatever `days` says: the console
    # reads every day up to the mark from the roll-ups alone.
    through = rolled_through()
    first_missing = through + timedelta(days=1) if through else today - timedelta(days=KEEP_DAYS)
    days = max(days, min((today - first_missing).days, KEEP_DAYS))
    written = 0
    # The conversations last seen in these days are seen again as each day is rolled up.
    ConversationSeen.objects.filter(last_day__gte=today - timedelta(days=days)).delete()
    ConversationSeenBy.objects.filter(last_day__gte=today - timedelta(days=days)).delete()
    for offset in range(days, 0, -1):
        written += rollup_day(today - timedelta(days=offset), see=False)
    # The conversations of all these days at once, each with the last day it had a call: one
    # pass instead of a day's update of every conversation seen again (which, over 90 days at
    # once, left millions of dead row versions behind).
    see_conversations(today - timedelta(days=days), today - timedelta(days=1))
    with transaction.atomic():
        RollupMark.objects.all().delete()
        RollupMark.objects.create(rolled_through=today - timedelta(days=1))
    # The days before those rebuilt keep their roll-ups (the console reads every day up to the
    # mark from them alone); only those older than the days kept go.
    oldest = today - timedelta(days=max(days, KEEP_DAYS))
    DailyUsage.objects.filter(day__lt=oldest).delete()
    DailyLatency.objects.filter(day__lt=oldest).delete()
    ConversationSeen.objects.filter(last_day__lt=oldest).delete()
    ConversationSeenBy.objects.filter(last_day__lt=oldest).delete()
    return written


def rollup_new_days(*, today: date | None = None) -> int:
    """Roll up the complete days not rolled up yet (the last KEEP_DAYS on a first run): what
    the periodic job does every hour, so that it works once a day. Returns the rows written."""
    today = today or timezone.now().date()
    through = rolled_through()
    yesterday = today - timedelta(days=1)
    if through is not None and through >= yesterday:
        return 0
    oldest = today - timedelta(days=KEEP_DAYS)
    day = oldest if through is None else max(through + timedelta(days=1), oldest)
    written, first = 0, day
    while day <= yesterday:
        written += rollup_day(day, see=False)
        day += timedelta(days=1)
    see_conversations(first, yesterday)
    with transaction.atomic():
        RollupMark.objects.all().delete()
        RollupMark.objects.create(rolled_through=yesterday)
    DailyUsage.objects.filter(day__lt=oldest).delete()
    DailyLatency.objects.filter(day__lt=oldest).delete()
    ConversationSeen.objects.filter(last_day__lt=oldest).delete()
    ConversationSeenBy.objects.filter(last_day__lt=oldest).delete()
    return written


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    return start, start + timedelta(days=1)


@transaction.atomic
def rollup_day(day: date, *, see: bool = True) -> int:
    """Roll up one complete day; with `see`, its conversations too (rollup and
    rollup_new_days see those of all the days they roll up at once)."""
    start, end = _day_bounds(day)
    rows = Generation.objects.filter(created_at__gte=start, created_at__lt=end)
    DailyUsage.objects.filter(day=day).delete()
    DailyLatency.objects.filter(day=day).delete()
    usage = [
        DailyUsage(
            day=day,
            **{k: (0 if v is None and k in USAGE_SUMS else v) for k, v in row.items()},
        )
        for row in rows.values(*USAGE_KEYS).annotate(**USAGE_SUMS).order_by()
    ]
    DailyUsage.objects.bulk_create(usage, batch_size=1000)
    DailyLatency.objects.bulk_create(
        latency_rows(day, rows.filter(cache_hit=False, is_error=False)), batch_size=500
    )
    if see:
        see_conversations(day, day)
    return len(usage)


LATENCY_DIMENSIONS = ("model", "feature", "variant")


def latency_rows(day: date, successful) -> list[DailyLatency]:
    """The latency roll-up rows of a day's successful calls: a histogram per model, feature and
    variant, counted by bucket in the database, and their sums over every subset of the three
    (a CUBE: 8 grouping sets)."""
    cube: dict[tuple, tuple[dict, dict]] = {}
    for index, column in enumerate(("latency_ms", "time_to_first_token_ms")):
        counted = (
            successful.filter(**{f"{column}__isnull": False})
            .annotate(bucket=histograms.bucket_sql(column))
            .values_list(*LATENCY_DIMENSIONS, "bucket")
            .annotate(calls=Count("id"))
            .order_by()
        )
        for *values, bucket, calls in counted:
            for kept in product((True, False), repeat=3):
                key = (*(v if on else "" for v, on in zip(values, kept, strict=True)), *kept)
                counts = cube.setdefault(key, ({}, {}))[index]
                counts[int(bucket)] = counts.get(int(bucket), 0) + calls
    return [
        DailyLatency(
            day=day, model=model, feature=feature, variant=variant, by_model=by_model,
            by_feature=by_feature, by_variant=by_variant, latency=histograms.pack(latency),
            first_token=histograms.pack(first_token),
        )
        for (model, feature, variant, by_model, by_feature, by_variant), (latency, first_token)
        in cube.items()
    ]  # fmt: skip


def see_conversations(first: date, last: date) -> None:
    """Mark the conversations of the days `first` to `last` as last seen on the last of those
    days they had a call, unless seen later: one upsert a table, through its unique index
    (ConversationSeen's key and feature, ConversationSeenBy's every column but the day), so
    that it costs what those days' conversations cost, not a read of the whole table."""
    start, _ = _day_bounds(first)
    _, end = _day_bounds(last)
    rows = Generation.objects.filter(created_at__gte=start, created_at__lt=end)
    for model, names, conflict in [
        (ConversationSeenBy, SEEN_KEYS, SEEN_BY_UNIQUE),
        (ConversationSeen, SEEN_KEYS[:2], '"key", "feature"'),
    ]:
        found, params = (
            rows.annotate(key=SESSION_OR_TRACE)
            .values(*names)
            .annotate(last_day=Max(TruncDate("created_at")))
            .order_by()
        ).query.sql_with_params()
        table = model._meta.db_table
        columns = ", ".join(f'"{name}"' for name in [*names, "last_day"])
        # WHERE TRUE: SQLite reads ON CONFLICT after a bare SELECT as a join's ON.
        with connection.cursor() as cursor, transaction.atomic():
            cursor.execute(
                f'INSERT INTO "{table}" ({columns}) SELECT {columns}'
                f" FROM ({found}) AS found WHERE TRUE ON CONFLICT ({conflict})"
                f' DO UPDATE SET "last_day" = excluded."last_day"'
                f' WHERE "{table}"."last_day" < excluded."last_day"',
                params,
            )


# ConversationSeenBy's unique index (models.UNIQUE_SEEN_BY), as ON CONFLICT names it.
SEEN_BY_UNIQUE = (
    '"key", "feature", "model", (COALESCE("plan_id", 0)), (COALESCE("organization_id", 0)),'
    ' (COALESCE("user_id", 0)), "variant", "is_error"'
)


def forget_conversations(keys: set[tuple[str, str]]) -> None:
    """Make the conversations `keys` ((feature, key)) agree with ConversationSeenBy again, after
    some of its rows went with a deleted user."""
    keys = sorted(keys)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        wanted = Q()
        for feature, key in chunk:
            wanted |= Q(feature=feature, key=key)
        ConversationSeen.objects.filter(wanted).delete()
        ConversationSeen.objects.bulk_create(
            ConversationSeen(**row)
            for row in ConversationSeenBy.objects.filter(wanted)
            .values("feature", "key")
            .annotate(last_day=Max("last_day"))
            .order_by()
        )


def seen(since: date, filters):
    """The rolled-up conversations last seen on `since` or later that pass `filters` (the
    errors filter included): ConversationSeen rows without filters, ConversationSeenBy rows
    (several to a conversation) with them."""
    if not filters:
        rows = ConversationSeen.objects.all()
    else:
        rows = ConversationSeenBy.objects.filter(**filters.seen_lookups())
    return rows.filter(last_day__gte=since)


def split(since: datetime) -> tuple[date | None, datetime]:
    """The period as roll-up days (through the returned date, or None) and raw rows (from the
    returned moment)."""
    mark = rolled_through()
    if mark is None or mark < since.date():
        return None, since
    start, _ = _day_bounds(mark)
    return mark, start + timedelta(days=1)


def usage(since: datetime, through: date):
    return DailyUsage.objects.filter(day__gte=since.date(), day__lte=through)


def raw_days(queryset):
    return queryset.annotate(day=TruncDate("created_at"))


def user_deleting(sender, instance, **kwargs):
    """Before a user's deletion: the conversations they had calls in (their ConversationSeenBy
    rows go with them; ConversationSeen is made to agree once they are gone)."""
    instance._conversations_seen = set(
        ConversationSeenBy.objects.filter(user_id=instance.pk)
        .values_list("feature", "key")
        .distinct()
    )


def user_deleted(sender, instance, **kwargs):
    keys = getattr(instance, "_conversations_seen", None)
    if keys:
        forget_conversations(keys)
