"""Latency histograms of the daily roll-ups: log-spaced buckets of bounded relative error.

A duration x (milliseconds) falls in bucket i = ceil(log(x) / log(GAMMA)), the bucket
(GAMMA^(i-1), GAMMA^i], GAMMA = (1 + ALPHA) / (1 - ALPHA); the bucket stands for
2 GAMMA^i / (GAMMA + 1), within ALPHA of every duration in it (DDSketch's mapping). With ALPHA
1%, 20 ms to 2 s is 230 buckets, 100 ms to 10 minutes 435: a day's histogram is a few hundred
integers whatever the number of calls, and any number of them add up as vectors. A percentile
read from a histogram is within ALPHA of the exact one (both order statistics percentile_cont
interpolates between are, so the interpolation is too).

A histogram is stored as a JSON list: the index of its first bucket, then the count of each
bucket from there to its last non-empty one ([] when empty). Durations under MIN_MS count as
MIN_MS.
"""

import math
from collections.abc import Iterable
from operator import add

from django.db.models import FloatField, Value
from django.db.models.functions import Ceil, Greatest, Ln

# Changing these changes what stored histograms mean: the roll-ups must be made again.
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA = math.log(GAMMA)
MIN_MS = 0.01


def bucket(ms: float) -> int:
    """The bucket of a duration in milliseconds."""
    return math.ceil(math.log(max(ms, MIN_MS)) / LOG_GAMMA)


def bucket_sql(column: str):
    """`bucket` of a column, as a database expression (PostgreSQL and SQLite alike)."""
    return Ceil(
        Ln(Greatest(column, Value(MIN_MS), output_field=FloatField()))
        / Value(LOG_GAMMA, output_field=FloatField())
    )


def value(index: int) -> float:
    """The duration a bucket stands for: within ALPHA of any duration in it."""
    return 2 * GAMMA**index / (GAMMA + 1)


def pack(counts: dict[int, int]) -> list[int]:
    """Bucket -> calls as the stored list: [first bucket, its count, the next one's, ...]."""
    counts = {int(index): n for index, n in counts.items() if n}
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [first, *(counts.get(index, 0) for index in range(first, last + 1))]


class Histogram:
    """A sum of stored histograms (and of single durations): counts in consecutive buckets
    from `first`."""

    __slots__ = ("counts", "first")

    def __init__(self):
        self.first = 0
        self.counts: list[int] = []

    def _cover(self, first: int, last: int) -> None:
        if not self.counts:
            self.first, self.counts = first, [0] * (last - first + 1)
            return
        if first < self.first:
            self.counts[:0] = [0] * (self.first - first)
            self.first = first
        end = self.first + len(self.counts) - 1
        if last > end:
            self.counts.extend([0] * (last - end))

    def add_packed(self, packed: list[int]) -> None:
        """Add a stored histogram: a vector add of its buckets."""
        if not packed:
            return
        first, n = packed[0], len(packed) - 1
        self._cover(first, first + n - 1)
        start = first - self.first
        self.counts[start : start + n] = map(add, self.counts[start : start + n], packed[1:])

    def add(self, index: int, calls: int = 1) -> None:
        """Add `calls` durations of bucket `index`."""
        self._cover(index, index)
        self.counts[index - self.first] += calls

    def add_counts(self, counts: Iterable[tuple[int, int]]) -> None:
        for index, calls in counts:
            self.add(int(index), calls)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def packed(self) -> list[int]:
        return pack({self.first + i: n for i, n in enumerate(self.counts) if n})

    def percentile(self, fraction: float) -> float | None:
        """percentile_cont(fraction) of the durations counted, each taken as its bucket's
        value: within ALPHA of the exact figure."""
        total = self.total
        if not total:
            return None
        position = fraction * (total - 1)
        lower_rank, upper_rank = math.floor(position), math.ceil(position)
        lower = upper = None
        seen = 0
        for offset, calls in enumerate(self.counts):
            seen += calls
            if lower is None and seen > lower_rank:
                lower = value(self.first + offset)
            if seen > upper_rank:
                upper = value(self.first + offset)
                break
        return lower + (upper - lower) * (position - lower_rank)
