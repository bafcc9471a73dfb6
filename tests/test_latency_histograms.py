"""The latency roll-ups' histograms (iridium.analytics.histograms): every duration within 1% of
the value its bucket stands for, percentiles within 1% of percentile_cont's, and the roll-up's
buckets (counted in the database) the same as Python's."""

import random
import statistics
from datetime import timedelta
from itertools import product

import pytest
from django.utils import timezone

from iridium.analytics import histograms, rollups
from iridium.analytics.models import DailyLatency
from tests import factories

TOLERANCE = 0.01  # what docs/console.md promises for rolled-up days


def test_every_duration_is_within_one_percent_of_its_bucket():
    rng = random.Random(7)
    durations = [0.01, 0.5, 1.0, 1.5, 99.999, 100.0, 1000.0, 65_000.0, 3_600_000.0]
    durations += [rng.uniform(0.01, 600_000) for _ in range(20_000)]
    durations += [rng.lognormvariate(6, 1.5) + 0.01 for _ in range(20_000)]
    for duration in durations:
        assert histograms.value(histograms.bucket(duration)) == pytest.approx(
            duration, rel=TOLERANCE
        ), duration
    assert histograms.bucket(0.0) == histograms.bucket(histograms.MIN_MS)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 101, 5000])
def test_percentiles_within_one_percent_of_percentile_cont(size):
    rng = random.Random(size)
    values = [rng.lognormvariate(6, 1) for _ in range(size)]
    # Added up from several stored histograms, as a period's days are.
    parts = [values[i::3] for i in range(3)]
    summed = histograms.Histogram()
    for part in parts:
        counts: dict = {}
        for value in part:
            counts[histograms.bucket(value)] = counts.get(histograms.bucket(value), 0) + 1
        summed.add_packed(histograms.pack(counts))
    assert summed.total == size
    for fraction in (0.0, 0.5, 0.95, 1.0):
        ordered = sorted(values)
        position = fraction * (size - 1)
        lower, upper = int(position), min(int(position) + 1, size - 1)
        exact = ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)
        assert summed.percentile(fraction) == pytest.approx(exact, rel=TOLERANCE)
    if size > 1:
        assert summed.percentile(0.5) == pytest.approx(statistics.median(values), rel=TOLERANCE)


def test_packing():
    assert histograms.pack({}) == []
    assert histograms.pack({5: 2, 7: 1, 9: 0}) == [5, 2, 0, 1]
    summed = histograms.Histogram()
    summed.add_packed([5, 2, 0, 1])
    summed.add_packed([-2, 1])
    summed.add_packed([])
    summed.add(9, 3)
    assert summed.packed() == [-2, 1, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 3]
    assert histograms.Histogram().percentile(0.5) is None


@pytest.mark.django_db
def test_the_rollup_counts_the_buckets_python_does_in_every_grouping_set(make_user, organization):
    people = [
        make_user("alice", plan="free", organization=organization),
        make_user("bob", plan="pro"),
        make_user("carol", plan="pro", organization=organization),
    ]
    yesterday = timezone.now() - timedelta(days=1)
    rng = random.Random(3)
    specs = [
        {
            "created_at": yesterday.replace(hour=12) + timedelta(seconds=index),
            "user": people[index % 7 % 3],
            "plan": people[index % 7 % 3].plan,
            "organization": people[index % 7 % 3].organization,
            "feature": ["chat", "code-generation"][index % 2],
            "model": ["gpt-4o", "gpt-4o-mini", "gpt-4.1"][index % 3],
            "variant": ["", "control"][index % 2 == 0 and index % 5 == 0],
            "latency_ms": rng.choice([0.0, 0.004, rng.uniform(1, 90_000)]),
            "time_to_first_token_ms": None if index % 4 == 0 else rng.uniform(5, 900),
        }
        for index in range(300)
    ]
    factories.create_generations(specs)
    rollups.rollup()
    rows = list(DailyLatency.objects.all())
    # 3 models x 2 features x (1 or 2 variants) x 2 plans x (an organization and none): the
    # base rows and their sums.
    kept = ("by_model", "by_feature", "by_variant", "by_plan", "by_organization")
    assert {tuple(getattr(r, name) for name in kept) for r in rows} == set(
        product((True, False), repeat=5)
    )
    assert {r.plan_id for r in rows if r.by_plan} == {person.plan_id for person in people}
    assert {r.plan_id for r in rows if not r.by_plan} == {None}
    assert {r.organization_id for r in rows if r.by_organization} == {organization.pk, None}
    assert {r.organization_id for r in rows if not r.by_organization} == {None}
    for row in rows:
        wanted = [
            spec
            for spec in specs
            if (not row.by_model or spec["model"] == row.model)
            and (not row.by_feature or spec["feature"] == row.feature)
            and (not row.by_variant or spec["variant"] == row.variant)
            and (not row.by_plan or spec["plan"].pk == row.plan_id)
            and (
                not row.by_organization
                or getattr(spec["organization"], "pk", None) == row.organization_id
            )
        ]
        for column, stored in [("latency_ms", row.latency), ("time_to_first_token_ms",
                                                              row.first_token)]:  # fmt: skip
            counts: dict = {}
            for spec in wanted:
                if spec[column] is not None:
                    found = histograms.bucket(spec[column])
                    counts[found] = counts.get(found, 0) + 1
            assert stored == histograms.pack(counts), (row, column)
