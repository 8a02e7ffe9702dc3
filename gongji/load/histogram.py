"""A latency histogram with bounded relative error, laid out like HdrHistogram.

Values are integer microseconds. Below ``2**bits`` each value has its own bucket; above,
each power of two is split into ``2**bits`` equal buckets, so a bucket is never wider
than ``1 / 2**bits`` of the values in it (0.78 % at the default 7 bits). Percentiles
report a bucket's highest value (capped at the true maximum), as HdrHistogram does.
"""

from __future__ import annotations

import math


class LatencyHistogram:
    """Counts of latencies; memory grows with the log of the range, not the count."""

    __slots__ = ("_bits", "_counts", "_sub", "count", "max_us", "min_us", "sum_us")

    def __init__(self, bits: int = 7) -> None:
        if not 1 <= bits <= 16:
            raise ValueError("bits is 1..16")
        self._bits = bits
        self._sub = 1 << bits
        self._counts: dict[int, int] = {}
        self.count = 0
        self.sum_us = 0
        self.max_us = 0
        self.min_us = 0

    @property
    def relative_error(self) -> float:
        """The bound on (reported - true) / true for any percentile."""
        return 1 / self._sub

    def _index(self, value: int) -> int:
        if value < self._sub:
            return value
        shift = value.bit_length() - self._bits - 1
        return ((shift + 1) << self._bits) + (value >> shift) - self._sub

    def _highest(self, index: int) -> int:
        """The largest value that falls in bucket ``index``."""
        if index < self._sub:
            return index
        shift = (index >> self._bits) - 1
        mantissa = (index & (self._sub - 1)) + self._sub
        return ((mantissa + 1) << shift) - 1

    def record_us(self, value: int, count: int = 1) -> None:
        """Record ``count`` latencies of ``value`` microseconds (negative counts as 0)."""
        value = max(0, int(value))
        index = self._index(value)
        self._counts[index] = self._counts.get(index, 0) + count
        if self.count == 0 or value < self.min_us:
            self.min_us = value
        self.count += count
        self.sum_us += value * count
        self.max_us = max(self.max_us, value)

    def record_seconds(self, seconds: float) -> None:
        self.record_us(round(seconds * 1_000_000))

    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts (same ``bits``)."""
        if other._bits != self._bits:
            raise ValueError("cannot merge histograms of different precision")
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        if other.count:
            self.min_us = other.min_us if not self.count else min(self.min_us, other.min_us)
        self.count += other.count
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def percentile_us(self, percent: float) -> int:
        """The value at or below which ``percent`` % of the recorded values lie."""
        if not 0 <= percent <= 100:
            raise ValueError("percent is 0..100")
        if self.count == 0:
            return 0
        rank = max(1, math.ceil(percent / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return min(self._highest(index), self.max_us)
        return self.max_us  # pragma: no cover - rank <= count

    def summary_ms(self) -> dict[str, float]:
        """p50, p90, p99, p999, max and mean in milliseconds, plus the count."""

        def ms(us: float) -> float:
            return round(us / 1000, 3)

        return {
            "count": self.count,
            "p50": ms(self.percentile_us(50)),
            "p90": ms(self.percentile_us(90)),
            "p99": ms(self.percentile_us(99)),
            "p999": ms(self.percentile_us(99.9)),
            "max": ms(self.max_us),
            "mean": ms(self.sum_us / self.count) if self.count else 0.0,
        }
