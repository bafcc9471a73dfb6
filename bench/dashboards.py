"""bench.dashboards: the analytics console's pages over a large generation table on PostgreSQL.

Fills a database of its own (`iridium_bench` on the local PostgreSQL unless DATABASE_URL is
set) with BENCH_ROWS generation rows (10,000,000 by default; BENCH_ROWS=1000000 for a quicker
run), 1% of them today and the rest over the 89 days before, three calls to a turn and the
turns grouped in 50,000 conversations; the rows are kept between runs. Rows are written in the
order of their time, as the app writes them (today's are the newest pages of the table). The
fill is generated inside PostgreSQL (INSERT ... SELECT over generate_series, in batches of
100,000): no row crosses the wire, which is faster still than COPY. It then rolls them up by
day as the periodic `rollup_generations` does, renders every console page for each period,
without filters, with three (feature, model, errors only), with one person's calls, one
plan's and one organization's (half the people work in five organizations of ten), several
times through Django's test client as a superuser, and reports the median time of each (a
database filled before the organizations must be filled again). The baseline in the same run
is `/healthz` (one trivial query). The last line: `rows=<n> slowest_page_ms=<x>
slowest_page=<name>`; the target is every page under 300 ms.

BENCH_ROLLUP=0 keeps the roll-ups a run before made (they must be through yesterday), to
measure the pages again without the roll-up of the 90 days; BENCH_REPEATS (5) renders of each
page.
"""

import os
import statistics
import time
from datetime import timedelta

from bench.common import ensure_database, machine, print_table, setup_django

ROWS = int(os.environ.get("BENCH_ROWS", "10000000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
ROLLUP = os.environ.get("BENCH_ROLLUP", "1") != "0"
TARGET_MS = 300.0
TODAY_ROWS = ROWS // 100
LOCAL_URL = "postgres://postgres@127.0.0.1:5432/iridium_bench"
ORGANIZATIONS, ORG_SIZE = 5, 10


FILL = """
INSERT INTO analytics_generation (
    created_at, trace_id, session_id, span_id, parent_id, user_id, organization_id, plan_id,
    feature, provider, model, base_url, stream, step, input_tokens, output_tokens, cached_tokens,
    input_cost_usd, output_cost_usd, total_cost_usd, latency_ms, time_to_first_token_ms,
    http_status, attempts, is_error, error, finish_reason, privacy_mode, tools, properties,
    cache_hit, saved_cost_usd, estimated_input_tokens, routing_reason, flags, variant, in_flight)
SELECT
    CASE WHEN i <= %(before_today)s
        THEN date_trunc('day', now()) - interval '89 days'
            + (i - 1)::float8 / %(before_today)s * interval '89 days'
        ELSE date_trunc('day', now())
            + (i - %(before_today)s - 1)::float8 / %(today)s * (now() - date_trunc('day', now()))
    END,
    'conversation-' || ((i / 3) %% 50000) || '-' || (i / 3),
    'conversation-' || ((i / 3) %% 50000),
    md5(i::text || %(salt)s), '',
    (%(users)s::bigint[])[1 + i %% %(user_count)s],
    CASE WHEN i %% %(user_count)s < %(org_users)s
        THEN (%(orgs)s::bigint[])[1 + (i %% %(user_count)s) / %(org_size)s] END,
    (%(plans)s::bigint[])[1 + (i %% %(user_count)s) %% 3],
    (ARRAY['chat','customer-support','code-generation','content-generation'])[1 + (i / 3) %% 4],
    'openai', (ARRAY['gpt-4o-mini','gpt-4o','gpt-4.1'])[1 + i %% 3], '', true, 1 + i %% 3,
    100 + i %% 500, 50 + i %% 300, 0,
    (i %% 1000) / 2e6, (i %% 1000) / 2e6, CASE WHEN i %% 10 = 0 THEN 0 ELSE (i %% 1000) / 1e6 END,
    100 + (i * 7) %% 2000, 20 + (i * 3) %% 400, 200, 1, i %% 50 = 0, '', 'stop', false,
    '[]', '{}', i %% 10 = 0, CASE WHEN i %% 10 = 0 THEN (i %% 1000) / 1e6 END,
    110 + i %% 500, 'plan default', '{}',
    (ARRAY['', 'control', 'mini'])[1 + (i / 3) %% 3], false
FROM generate_series(%(start)s, %(stop)s) AS i
"""


def fill(rows: int) -> float:
    from django.db import connection

    from iridium.accounts.models import Organization, Plan, User
    from iridium.accounts.services import ensure_default_plans
    from iridium.ai.models import Generation

    ensure_default_plans()
    have = Generation.objects.count()
    if have >= rows:
        return 0.0
    # Half the people work in five organizations of ten (each a tenth of the calls), half alone.
    organizations = [
        Organization.objects.get_or_create(slug=f"bench-org-{n}", defaults={"name": f"Org {n}"})[0]
        for n in range(ORGANIZATIONS)
    ]
    users = []
    for n in range(100):
        member = organizations[n // ORG_SIZE] if n < ORGANIZATIONS * ORG_SIZE else None
        user, _ = User.objects.update_or_create(
            username=f"bench-user-{n}", defaults={"organization": member}
        )
        users.append(user.pk)
    plans = list(Plan.objects.values_list("pk", flat=True)[:3])
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # As a bulk load is done: the secondary indexes are dropped and made again once at the
        # end (updating 15 of them row by row would take an hour), and foreign keys are not
        # checked row by row (the users and plans exist).
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_generation'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        try:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")
            for start in range(have + 1, rows + 1, 100_000):
                cursor.execute(
                    FILL,
                    {
                        "salt": str(time.time()),
                        "users": users,
                        "user_count": len(users),
                        "orgs": [organization.pk for organization in organizations],
                        "org_users": ORGANIZATIONS * ORG_SIZE,
                        "org_size": ORG_SIZE,
                        "plans": plans,
                        "start": start,
                        "stop": min(rows, start + 99_999),
                        "before_today": rows - TODAY_ROWS,
                        "today": TODAY_ROWS,
                    },
                )
        finally:  # a fill stopped half-way still leaves the table as the app made it
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for _, definition in indexes:
                cursor.execute(definition)
        # As autovacuum leaves a table the app has written for a while: the visibility map set
        # (index-only scans need it; a freshly filled table has none) and statistics fresh.
        cursor.execute("VACUUM (ANALYZE) analytics_generation")
    return time.perf_counter() - started


def measure(client, url: str) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        assert response.status_code == 200, (url, response.status_code)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main():
    url = os.environ.setdefault("DATABASE_URL", LOCAL_URL)
    if not url.startswith("postgres"):
        raise SystemExit(
            "bench.dashboards measures PostgreSQL: set DATABASE_URL to a postgres:// URL"
        )
    if url == LOCAL_URL:
        ensure_database(url)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    setup_django()
    from django.test import Client
    from django.test.utils import setup_test_environment

    from iridium.accounts.models import User

    setup_test_environment()
    filled = fill(ROWS)
    from django.utils import timezone

    from iridium.ai.models import Generation
    from iridium.analytics.rollups import rolled_through, rollup, rollup_new_hours

    # What `manage.py rollup_generations` does, then the periodic job's hours; the pages then
    # read the roll-ups for complete days, for today's complete hours, and the raw rows of the
    # hour under way.
    started = time.perf_counter()
    yesterday = timezone.now().date() - timedelta(days=1)
    rolled_up = ROLLUP or rolled_through() != yesterday
    if rolled_up:
        rollup()
    rolled = time.perf_counter() - started
    # The hours up to the one of the newest row: its hour is read raw, as the hour under way
    # is when the job has just run (the fill's last hour is partly filled, as that one is).
    started = time.perf_counter()
    newest = Generation.objects.order_by("-created_at").values_list("created_at", flat=True)[0]
    rollup_new_hours(now=newest)
    hours = time.perf_counter() - started
    # As autovacuum leaves tables rewritten a minute ago: their statistics fresh (the planner
    # takes a table filled since its last ANALYZE for a near-empty one), and the row versions
    # that the roll-up's daily updates of the conversations seen leave behind cleared
    # (millions at 10,000,000 rows; the benchmark's server may run without autovacuum).
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cursor:
        for name in ("DailyUsage", "DailyLatency", "HourlyUsage", "HourlyLatency",
                     "ConversationSeen", "ConversationSeenBy"):  # fmt: skip
            table = apps.get_model("analytics", name)._meta.db_table
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')

    count = Generation.objects.count()
    from iridium.analytics.rollups import parts
    from iridium.analytics.selectors import period_start

    raw = Generation.objects.filter(created_at__gte=parts(period_start("today")).raw_since).count()
    staff, _ = User.objects.get_or_create(
        username="bench-staff", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(staff)
    pages = [("healthz (baseline)", "/healthz")]
    filtered = "&feature=chat&model=gpt-4o&errors=on"
    # One person's calls: their latency is exact, from the raw rows (docs/console.md), read
    # through the covering index on (user, created_at). One plan's: a third of the rows, read
    # from the roll-ups, which keep the plan.
    by_user = "&user=bench-user-1"
    by_plan = "&plan=free"
    # One organization's: a tenth of the rows, read from the roll-ups, which keep the
    # organization too (the raw rows of the hour under way through the covering index on
    # (organization, created_at)).
    by_organization = "&organization=bench-org-0"
    for period in ("today", "24h", "7d", "30d", "90d"):
        for name, path in (("dashboard", "/analytics/"), ("traces", "/analytics/traces/"),
                           ("experiments", "/analytics/experiments/")):  # fmt: skip
            pages.append((f"{name} {period}", f"{path}?period={period}"))
            pages.append((f"{name} {period} filtered", f"{path}?period={period}{filtered}"))
            pages.append((f"{name} {period} by user", f"{path}?period={period}{by_user}"))
            pages.append((f"{name} {period} by plan", f"{path}?period={period}{by_plan}"))
            pages.append(
                (f"{name} {period} by organization", f"{path}?period={period}{by_organization}")
            )
    turn = Generation.objects.filter(session_id="conversation-7").values("trace_id").first()
    pages.append(("session", "/analytics/sessions/conversation-7/"))
    pages.append(("trace", f"/analytics/traces/{turn['trace_id']}/"))
    pages.append(("budgets", "/analytics/budgets/"))
    results = [(name, measure(client, url)) for name, url in pages]
    baseline = results[0][1]
    print_table(
        f"bench.dashboards: {count} generation rows on PostgreSQL"
        f"{f' (filled in {filled:.0f} s)' if filled else ''}, "
        f"{f'rolled up in {rolled:.1f} s' if rolled_up else 'roll-ups kept'}, "
        f"hours rolled up in {hours:.1f} s, {raw} raw rows after the roll-ups, "
        f"median of {REPEATS}, {machine()}",
        [[name, f"{ms:.1f}", f"{ms / baseline:.1f}x"] for name, ms in results],
        ["page", "ms", "vs baseline"],
    )
    slowest_name, slowest = max(results[1:], key=lambda result: result[1])
    print(
        f"rows={count} slowest_page_ms={slowest:.1f} slowest_page={slowest_name.replace(' ', '_')}"
    )


if __name__ == "__main__":
    main()
