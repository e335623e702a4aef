"""Latency samples → percentiles, and rates, the same way in every benchmark.

Percentiles are by linear interpolation between the closest ranks (numpy's default,
``statistics.quantiles(method="inclusive")``): p50 of ``[1, 2, 3, 4]`` is 2.5, and p100
is the maximum. A benchmark keeps every sample, so nothing is estimated from buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SUMMARY_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``samples``; ValueError when there are none."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {q}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentile_label(q: float) -> str:
    """50.0 → "p50", 99.9 → "p99.9"."""
    return f"p{q:g}"


@dataclass(frozen=True)
class Summary:
    """Count, mean, maximum and the usual percentiles of one set of samples (in their own unit)."""

    count: int
    mean: float
    maximum: float
    percentiles: dict[str, float]

    @classmethod
    def of(cls, samples: Iterable[float], percentiles: Iterable[float] = SUMMARY_PERCENTILES) -> Summary:
        values = list(samples)
        if not values:
            raise ValueError("no samples")
        return cls(
            count=len(values),
            mean=sum(values) / len(values),
            maximum=max(values),
            percentiles={percentile_label(q): percentile(values, q) for q in percentiles},
        )

    def __getitem__(self, label: str) -> float:
        return self.percentiles[label]

    def as_dict(self, digits: int = 3) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean": round(self.mean, digits),
            **{label: round(value, digits) for label, value in self.percentiles.items()},
            "max": round(self.maximum, digits),
        }


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 for an empty span."""
    return count / seconds if seconds > 0 else 0.0


def ratio(top: float | None, bottom: float | None) -> float | None:
    """``top / bottom``, or None when either is missing or ``bottom`` is 0."""
    return top / bottom if top is not None and bottom else None
