"""Roll-ups of the generation record by day and by hour, so that the console reads a few
thousand rows instead of millions. The periodic job `rollup_generations` (hourly,
iridium.analytics.tasks) sums the complete days not summed yet, then the complete hours of
yesterday and today; the console reads the days, then the hours after them, then the raw rows
of the hour under way (and of whatever the job has not caught up yet), so every figure is exact
(latency percentiles within 1%, iridium.analytics.histograms)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import product

from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from iridium.ai.models import Generation

from . import histograms
from .models import (
    ConversationSeen,
    ConversationSeenBy,
    DailyLatency,
    DailyUsage,
    HourlyLatency,
    HourlyUsage,
    RollupMark,
)

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
    # The conversations last seen in these days are seen again as each day is rolled up (those
    # last seen today, in the hours rolled up, stay).
    rebuilt = {"last_day__gte": today - timedelta(days=days), "last_day__lt": today}
    ConversationSeen.objects.filter(**rebuilt).delete()
    ConversationSeenBy.objects.filter(**rebuilt).delete()
    for offset in range(days, 0, -1):
        written += rollup_day(today - timedelta(days=offset), see=False)
    # The conversations of all these days at once, each with the last day it had a call: one
    # pass instead of a day's update of every conversation seen again (which, over 90 days at
    # once, left millions of dead row versions behind).
    see_conversations(today - timedelta(days=days), today - timedelta(days=1))
    _mark_days(today - timedelta(days=1))
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
    _mark_days(yesterday)
    DailyUsage.objects.filter(day__lt=oldest).delete()
    DailyLatency.objects.filter(day__lt=oldest).delete()
    ConversationSeen.objects.filter(last_day__lt=oldest).delete()
    ConversationSeenBy.objects.filter(last_day__lt=oldest).delete()
    return written


@transaction.atomic
def _mark_days(through: date) -> None:
    """The days are rolled up through `through` (the hours' mark kept)."""
    mark = RollupMark.objects.select_for_update().first()
    if mark is None:
        RollupMark.objects.create(rolled_through=through)
    else:
        RollupMark.objects.exclude(pk=mark.pk).delete()
        mark.rolled_through = through
        mark.save(update_fields=["rolled_through"])


def rollup_new_hours(*, now: datetime | None = None) -> int:
    """Roll up the complete hours of yesterday and today not rolled up yet, and forget older
    hours (their days are DailyUsage's): what the periodic job does every hour after the days.
    The conversations of those hours are seen too (last seen on their day). Returns the usage
    rows written; nothing before the days have a mark."""
    now = now or timezone.now()
    current = hour_start(now)
    keep_from, _ = _day_bounds(timezone.localdate(now) - timedelta(days=1))
    mark = RollupMark.objects.first()
    if mark is None:
        return 0
    going_on = mark.hours_from is not None and mark.rolled_until is not None
    going_on = going_on and keep_from <= mark.rolled_until <= current
    if going_on:
        begin = mark.rolled_until
    else:  # a first run, or the hours kept end before yesterday: made again from the raw rows
        begin = keep_from
        with transaction.atomic():
            RollupMark.objects.filter(pk=mark.pk).update(hours_from=None, rolled_until=None)
            HourlyUsage.objects.all().delete()
            HourlyLatency.objects.all().delete()
    written, hour = 0, begin
    while hour < current:
        written += rollup_hour(hour)
        hour = _next_hour(hour)
    if begin < current:
        see_between(begin, current)
    with transaction.atomic():
        hours_from = max(mark.hours_from, keep_from) if going_on else keep_from
        RollupMark.objects.filter(pk=mark.pk).update(
            hours_from=hours_from, rolled_until=max(current, begin)
        )
        HourlyUsage.objects.filter(hour__lt=hours_from).delete()
        HourlyLatency.objects.filter(hour__lt=hours_from).delete()
    return written


def hour_start(moment: datetime) -> datetime:
    """The start of the (local) hour `moment` is in."""
    return timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)


def _next_hour(hour: datetime) -> datetime:
    # In UTC: aware arithmetic in a local zone is wall-clock arithmetic.
    return timezone.localtime(hour.astimezone(UTC) + timedelta(hours=1))


@transaction.atomic
def rollup_hour(hour: datetime) -> int:
    """Roll up one complete hour (its conversations are seen by the caller)."""
    end = _next_hour(hour)
    day = timezone.localtime(hour).date()
    rows = Generation.objects.filter(created_at__gte=hour, created_at__lt=end)
    return _sum_into(rows, HourlyUsage, HourlyLatency, {"hour": hour}, day=day)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    return start, start + timedelta(days=1)


@transaction.atomic
def rollup_day(day: date, *, see: bool = True) -> int:
    """Roll up one complete day; with `see`, its conversations too (rollup and
    rollup_new_days see those of all the days they roll up at once)."""
    start, end = _day_bounds(day)
    rows = Generation.objects.filter(created_at__gte=start, created_at__lt=end)
    written = _sum_into(rows, DailyUsage, DailyLatency, {"day": day})
    if see:
        see_conversations(day, day)
    return written


def _sum_into(rows, usage_table, latency_table, at: dict, **also) -> int:
    """Replace the roll-ups of one day or hour (`at`: its day or its hour; `also`: the other
    columns its rows carry) in `usage_table` and `latency_table` by the sums of `rows`, the
    generations of that day or hour. Returns the usage rows written."""
    usage_table.objects.filter(**at).delete()
    latency_table.objects.filter(**at).delete()
    usage = [
        usage_table(
            **at,
            **also,
            **{k: (0 if v is None and k in USAGE_SUMS else v) for k, v in row.items()},
        )
        for row in rows.values(*USAGE_KEYS).annotate(**USAGE_SUMS).order_by()
    ]
    usage_table.objects.bulk_create(usage, batch_size=1000)
    latency_table.objects.bulk_create(
        latency_rows(rows.filter(cache_hit=False, is_error=False), latency_table, **at, **also),
        batch_size=500,
    )
    return len(usage)


LATENCY_DIMENSIONS = ("model", "feature", "variant", "plan", "organization")
LATENCY_COLUMNS = ("model", "feature", "variant", "plan_id", "organization_id")
LATENCY_EMPTY = ("", "", "", None, None)  # a dimension summed over


def latency_rows(successful, table=DailyLatency, **when) -> list:
    """The latency roll-up rows (`table`: DailyLatency or HourlyLatency, with `when`: their day
    or hour) of a day's or an hour's successful calls: a histogram per model, feature, variant,
    plan and organization, counted by bucket in the database, and their sums over every subset
    of the five (a CUBE: 32 grouping sets)."""
    cube: dict[tuple, tuple[dict, dict]] = {}
    sets = list(product((True, False), repeat=len(LATENCY_COLUMNS)))
    for index, column in enumerate(("latency_ms", "time_to_first_token_ms")):
        counted = (
            successful.filter(**{f"{column}__isnull": False})
            .annotate(bucket=histograms.bucket_sql(column))
            .values_list(*LATENCY_COLUMNS, "bucket")
            .annotate(calls=Count("id"))
            .order_by()
        )
        for *values, bucket, calls in counted:
            for kept in sets:
                summed = zip(values, kept, LATENCY_EMPTY, strict=True)
                key = (*(value if on else empty for value, on, empty in summed), *kept)
                counts = cube.setdefault(key, ({}, {}))[index]
                counts[int(bucket)] = counts.get(int(bucket), 0) + calls
    width = len(LATENCY_COLUMNS)
    return [
        table(
            **when,
            **dict(zip(LATENCY_COLUMNS, key[:width], strict=True)),
            **{f"by_{name}": on for name, on in zip(LATENCY_DIMENSIONS, key[width:], strict=True)},
            latency=histograms.pack(latency),
            first_token=histograms.pack(first_token),
        )
        for key, (latency, first_token) in cube.items()
    ]


def see_conversations(first: date, last: date) -> None:
    """Mark the conversations of the days `first` to `last` as last seen on the last of those
    days they had a call, unless seen later: one upsert a table, through its unique index
    (ConversationSeen's key and feature, ConversationSeenBy's every column but the day), so
    that it costs what those days' conversations cost, not a read of the whole table."""
    start, _ = _day_bounds(first)
    _, end = _day_bounds(last)
    see_between(start, end)


def see_between(start: datetime, end: datetime) -> None:
    """`see_conversations` of the calls from `start` to `end` (the hours rolled up: their
    conversations are last seen on their day), each with its last call (`last_call_at`) too,
    unless seen later."""
    rows = Generation.objects.filter(created_at__gte=start, created_at__lt=end)
    for model, names, conflict in [
        (ConversationSeenBy, SEEN_KEYS, SEEN_BY_UNIQUE),
        (ConversationSeen, SEEN_KEYS[:2], '"key", "feature"'),
    ]:
        found, params = (
            rows.annotate(key=SESSION_OR_TRACE)
            .values(*names)
            .annotate(last_day=Max(TruncDate("created_at")), last_call_at=Max("created_at"))
            .order_by()
        ).query.sql_with_params()
        table = model._meta.db_table
        columns = ", ".join(f'"{name}"' for name in [*names, "last_day", "last_call_at"])
        # WHERE TRUE: SQLite reads ON CONFLICT after a bare SELECT as a join's ON. A row seen
        # before migration 0016 has no last call: its day's calls give it one.
        with connection.cursor() as cursor, transaction.atomic():
            cursor.execute(
                f'INSERT INTO "{table}" ({columns}) SELECT {columns}'
                f" FROM ({found}) AS found WHERE TRUE ON CONFLICT ({conflict})"
                f' DO UPDATE SET "last_day" = excluded."last_day",'
                f' "last_call_at" = excluded."last_call_at"'
                f' WHERE "{table}"."last_day" < excluded."last_day"'
                f' OR ("{table}"."last_day" = excluded."last_day"'
                f' AND ("{table}"."last_call_at" IS NULL'
                f' OR "{table}"."last_call_at" < excluded."last_call_at"))',
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
            .annotate(last_day=Max("last_day"), last_call_at=Max("last_call_at"))
            .order_by()
        )


def seen(since: datetime, filters):
    """The rolled-up conversations with a call at `since` or later that pass `filters` (the
    errors filter included): ConversationSeen rows without filters, ConversationSeenBy rows
    (several to a conversation) with them. From midnight, those last seen on that day or
    later; from another moment (the last 24 hours, whose hours are rolled up: each
    conversation seen in them has its last call), those whose last call was then or later."""
    if not filters:
        rows = ConversationSeen.objects.all()
    else:
        rows = ConversationSeenBy.objects.filter(**filters.seen_lookups())
    if at_midnight(since):
        return rows.filter(last_day__gte=timezone.localtime(since).date())
    return rows.filter(last_call_at__gte=since)


def at_midnight(moment: datetime) -> bool:
    """Whether `moment` is a local day's start (where a period can begin with whole days)."""
    local = timezone.localtime(moment)
    return local == local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Parts:
    """A period from `since` as the console reads it: the day roll-ups from its first day
    through `through` (or None), then the hour roll-ups from `hours[0]` to `hours[1]` (or
    None), then the raw rows from `raw_since`."""

    since: datetime
    through: date | None
    hours: tuple[datetime, datetime] | None
    raw_since: datetime

    @property
    def rolled(self) -> bool:
        return self.through is not None or self.hours is not None


def parts(since: datetime, *, days: bool = True, rolled: bool = True) -> Parts:
    """The period from `since` as roll-ups and raw rows. Days are read from the roll-ups when
    the period starts at midnight (and `days`); the hours after them (or after `since`) when
    the hour roll-ups cover them from there on; the raw rows after both. Without `rolled`, the
    raw rows alone."""
    mark = RollupMark.objects.first() if rolled else None
    through, moment = None, since
    if mark is None:
        return Parts(since, None, None, since)
    if days and at_midnight(since) and mark.rolled_through >= timezone.localtime(since).date():
        through = mark.rolled_through
        _, moment = _day_bounds(through)
    hours = None
    if (
        mark.hours_from is not None
        and mark.rolled_until is not None
        and mark.hours_from <= moment < mark.rolled_until
        and hour_start(moment) == moment
    ):
        hours, moment = (moment, mark.rolled_until), mark.rolled_until
    return Parts(since, through, hours, moment)


def usage(since: datetime, through: date):
    return DailyUsage.objects.filter(day__gte=since.date(), day__lte=through)


def usage_of(found: Parts) -> list:
    """The usage roll-up rows of a period's parts: the days' (DailyUsage), the hours'
    (HourlyUsage), either left out when the period has none."""
    rows = []
    if found.through is not None:
        rows.append(usage(found.since, found.through))
    if found.hours is not None:
        start, end = found.hours
        rows.append(HourlyUsage.objects.filter(hour__gte=start, hour__lt=end))
    return rows


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
