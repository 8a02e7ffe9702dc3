"""How long each region takes to answer, so that retries wait longer than a busy region.

A retry of an unanswered commit, credit or abort is a safety net: the broker does not
lose a confirmed message, so under load an answer is late, not lost. A fixed retry
interval shorter than the queueing delay re-sends every step, which adds load exactly
when the system has none to spare (seen at 6,400 co-payments in flight: thousands of
duplicate outcomes and a lower throughput than at 3,200). This estimator is TCP's
(Jacobson and Karels, RFC 6298): a smoothed answer time and its mean deviation per
region; the retry timeout is the smoothed time plus four deviations. Like TCP (Karn's
rule), callers sample only first attempts, whose answer cannot belong to a resend.

It lives in memory: after a restart every region starts again from the configured floor.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Estimate:
    smoothed_ms: float
    deviation_ms: float


class ResponseTimes:
    """Per region: smoothed answer time and the retry timeout it implies (sans-I/O)."""

    GAIN = 1 / 8
    """Weight of a new sample in the smoothed time (RFC 6298's alpha)."""
    DEVIATION_GAIN = 1 / 4
    """Weight of a new sample's deviation (RFC 6298's beta)."""

    def __init__(self) -> None:
        self._estimates: dict[str, _Estimate] = {}

    def observe(self, region: str, answer_ms: int) -> None:
        """A first attempt sent to ``region`` was answered after ``answer_ms``."""
        sample = float(max(0, answer_ms))
        estimate = self._estimates.get(region)
        if estimate is None:
            self._estimates[region] = _Estimate(sample, sample / 2)
            return
        error = sample - estimate.smoothed_ms
        estimate.deviation_ms += self.DEVIATION_GAIN * (abs(error) - estimate.deviation_ms)
        estimate.smoothed_ms += self.GAIN * error

    def timeout_ms(self, region: str, floor_ms: int) -> int:
        """How long to wait for ``region``'s answer before a retry: at least ``floor_ms``."""
        estimate = self._estimates.get(region)
        if estimate is None:
            return floor_ms
        return max(floor_ms, round(estimate.smoothed_ms + 4 * estimate.deviation_ms))
