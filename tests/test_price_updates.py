"""Price data without a thread per process: with AI_PRICES_UPDATE_URL the periodic job
`refresh_prices` fetches genai-prices' data (from a loopback server here, over real HTTP),
checks it with the library's own reader and stores it; every process then prices with the
newest stored data. A bad or unreachable payload changes nothing and the run fails."""

import asyncio
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django_tasks_db.management.commands.db_worker import Worker
from genai_prices import data_snapshot

from iridium import ai
from iridium.ai import pricing
from iridium.ai.models import Generation, PriceData
from iridium.ai.recorder import recorder
from iridium.ai.tasks import refresh_prices
from iridium.ai.types import Usage
from iridium.jobs import schedule
from iridium.jobs.models import PeriodicJob
from tests.fakes.posthog_server import refused_url
from tests.fakes.price_data import PriceDataServer, bundled_payload, model_entry
from tests.helpers.production import ROOT

REFRESH = "iridium.ai.tasks.refresh_prices"
MODEL = "gpt-4o-mini"  # the free plan's default model (the `user` fixture's plan)
USAGE = Usage(input_tokens=1000, output_tokens=500, cached_tokens=200)


@pytest.fixture(autouse=True)
def bundled_prices():
    pricing.price_data.forget()
    pricing.overrides.invalidate()
    yield
    pricing.price_data.forget()
    pricing.overrides.invalidate()


@pytest.fixture
def price_server():
    with PriceDataServer() as server:
        yield server


def payload_with_new_price(input_mtok=1.5, cached_mtok=0.5, output_mtok=6.0):
    """The bundled data, with MODEL's price at openai changed."""
    payload = bundled_payload()
    entry = model_entry(payload, "openai", MODEL)
    entry["prices"] = {
        "input_mtok": input_mtok,
        "cache_read_mtok": cached_mtok,
        "output_mtok": output_mtok,
    }
    return payload


def expected_cost(usage, input_mtok, cached_mtok, output_mtok):
    uncached = usage.input_tokens - usage.cached_tokens
    return (
        uncached * Decimal(str(input_mtok))
        + usage.cached_tokens * Decimal(str(cached_mtok))
        + usage.output_tokens * Decimal(str(output_mtok))
    ) / 1_000_000


def run_the_job(settings):
    """What a worker does: the scheduler enqueues the due job, django-tasks-db's worker runs it."""
    settings.PERIODIC_JOBS = {REFRESH: 6 * 3600}
    schedule.sync_jobs()
    PeriodicJob.objects.filter(task_path=REFRESH).update(next_run_at="2000-01-01T00:00Z")
    assert schedule.run_due() == [REFRESH]
    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test",
        excluded_queue_names=[],
    ).run()
    return PeriodicJob.objects.get(task_path=REFRESH)


def cost_now(usage=USAGE):
    """A process's next pricing after its refresh interval has passed."""
    pricing.overrides.invalidate()
    pricing.overrides.refresh_if_stale_sync()
    return pricing.price(provider="openai", model=MODEL, usage=usage)


def test_the_serialised_bundled_data_reads_back_as_the_bundled_data():
    # The payload the tests serve is the library's real data in its real format.
    snapshot = pricing.snapshot_from_payload(bundled_payload())
    assert snapshot.providers == data_snapshot._bundled_snapshot().providers


# --- Off by default -------------------------------------------------------------------------


def test_off_by_default_the_bundled_prices_and_no_job(settings, transactional_db, price_server):
    assert settings.AI_PRICES_UPDATE_URL == ""
    assert REFRESH not in settings.PERIODIC_JOBS
    bundled = cost_now()
    assert refresh_prices.call() == "off: AI_PRICES_UPDATE_URL is not set"
    assert price_server.requests == 0 and not PriceData.objects.exists()

    # Data stored earlier is not used while the setting is off; turning it off goes back.
    price_server.serve(payload_with_new_price())
    settings.AI_PRICES_UPDATE_URL = price_server.url
    refresh_prices.call()
    assert cost_now() != bundled
    settings.AI_PRICES_UPDATE_URL = ""
    assert cost_now() == bundled
    assert not data_snapshot.get_snapshot().from_auto_update


def test_the_setting_schedules_the_job(settings):
    script = (
        "import django; django.setup(); from django.conf import settings as s;"
        f" print(s.PERIODIC_JOBS.get('{REFRESH}'))"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AI_PRICES")}
    environment.update(DJANGO_SETTINGS_MODULE="iridium.settings", IRIDIUM_ENV_FILE="/nonexistent")

    def scheduled(**variables):
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**environment, **variables},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert settings.AI_PRICES_UPDATE_EVERY_SECONDS == 6 * 3600  # the default period
    url, every = "https://prices.example/data.json", "600"
    assert scheduled(AI_PRICES_UPDATE_URL=url, AI_PRICES_UPDATE_EVERY_SECONDS=every) == every


# --- The job and the processes --------------------------------------------------------------


def test_the_job_stores_the_data_and_a_call_is_priced_with_it(
    ai_settings, user, price_server, django_assert_num_queries
):
    async def call(trace_id):
        completion = await ai.complete(
            ai.Request(
                user=user,
                feature="chat",
                messages=[{"role": "user", "content": "hello [[demo:cached=3]]"}],
                trace_id=trace_id,
            )
        )
        await asyncio.to_thread(recorder.flush)
        return completion, await Generation.objects.aget(trace_id=trace_id)

    before, _ = asyncio.run(call("before"))
    assert before.model == MODEL
    assert before.cost.total_usd != expected_cost(before.usage, 1.5, 0.5, 6.0)

    ai_settings.AI_PRICES_UPDATE_URL = price_server.url
    price_server.serve(payload_with_new_price(1.5, 0.5, 6.0))
    job = run_the_job(ai_settings)
    assert job.last_outcome == PeriodicJob.Outcome.SUCCESSFUL and job.runs == 1
    [stored] = PriceData.objects.all()
    assert stored.url == price_server.url and price_server.requests == 1
    assert stored.providers == len(data_snapshot._bundled_snapshot().providers)

    pricing.overrides.invalidate()  # this process's refresh interval has passed
    after, row = asyncio.run(call("after"))
    assert after.usage.cached_tokens == 3
    assert after.cost.total_usd == expected_cost(after.usage, 1.5, 0.5, 6.0)
    assert row.total_cost_usd == after.cost.total_usd
    assert row.input_cost_usd == expected_cost(after.usage, 1.5, 0.5, 0)

    # Between refreshes nothing is read; a refresh with nothing new reads two small things.
    with django_assert_num_queries(0):
        pricing.overrides.refresh_if_stale_sync()
    pricing.overrides.invalidate()
    with django_assert_num_queries(2):  # the overrides, the newest price data's id
        pricing.overrides.refresh_if_stale_sync()


@pytest.mark.parametrize("failure", ["not json", "not price data", "server error", "refused"])
def test_bad_or_unreachable_data_keeps_the_prices_and_fails_the_run(
    settings, transactional_db, price_server, failure
):
    settings.AI_PRICES_UPDATE_URL = price_server.url
    price_server.serve(payload_with_new_price(1.5, 0.5, 6.0))
    assert run_the_job(settings).last_outcome == PeriodicJob.Outcome.SUCCESSFUL
    in_use = cost_now()
    assert in_use.total_usd == expected_cost(USAGE, 1.5, 0.5, 6.0)

    if failure == "not json":
        price_server.serve(b"<html>maintenance</html>")
    elif failure == "not price data":
        price_server.serve([{"id": "openai", "models": [{"id": MODEL, "prices": "cheap"}]}])
    elif failure == "server error":
        price_server.serve(payload_with_new_price(9, 9, 9), status=503)
    else:
        settings.AI_PRICES_UPDATE_URL = refused_url()
    job = run_the_job(settings)
    assert job.last_outcome == PeriodicJob.Outcome.FAILED
    assert job.last_error.endswith("PriceDataError")
    assert PriceData.objects.count() == 1
    assert cost_now() == in_use


def test_only_the_latest_few_are_kept_and_the_newest_is_used(
    settings, transactional_db, price_server
):
    settings.AI_PRICES_UPDATE_URL = price_server.url
    for output_mtok in range(1, 6):
        price_server.serve(payload_with_new_price(1, 1, output_mtok))
        refresh_prices.call()
    assert PriceData.objects.count() == pricing.PRICE_DATA_KEPT
    usage = Usage(input_tokens=0, output_tokens=1_000_000, cached_tokens=0)
    assert cost_now(usage).total_usd == 5
