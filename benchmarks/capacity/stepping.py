"""Finding the highest rate the fleet holds: each step's verdict, and which rate to offer next.

A step holds when its p99 is below the bound, nothing failed (no socket error or timeout, no answer
outside 2xx) and the paced script actually sent what was offered (at least ``min_sent_share`` of it:
a sender that falls behind would hide the queueing it avoided). The search grows the rate by
``growth`` while steps hold, then bisects between the highest rate that held and the lowest above it
that did not, until they are within ``resolution`` of each other; then it measures the highest rate
that held once more (the machine is shared and a step's p99 is one stall away from another verdict),
and goes on below it if that fails. The steps are bounded by ``max_steps`` (and the caller's time budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.gateway.wrk import WrkResult


@dataclass(frozen=True)
class Criteria:
    p99_below_ms: float = 300.0
    min_sent_share: float = 0.95

    def failures(self, offered: int, result: WrkResult, non_2xx: int) -> list[str]:
        """Why a step at ``offered`` req/s did not hold; empty when it held."""
        reasons = []
        p99 = result.latency_ms["p99"]
        if p99 >= self.p99_below_ms:
            reasons.append(f"p99 {p99:.0f} ms >= {self.p99_below_ms:.0f} ms")
        if non_2xx:
            reasons.append(f"{non_2xx} answers outside 2xx")
        if socket := {kind: n for kind, n in result.errors.items() if n and kind != "status"}:
            reasons.append("socket errors " + ", ".join(f"{kind} {n}" for kind, n in socket.items()))
        if result.requests_per_second < self.min_sent_share * offered:
            reasons.append(f"sent {result.requests_per_second:.0f} req/s of {offered}")
        return reasons


@dataclass(frozen=True)
class RateSearch:
    start: int
    max_steps: int
    growth: float = 1.5
    resolution: float = 0.1  # stop when the bracket is narrower than this share of its top
    floor: int = 5  # no step below this rate
    confirm: bool = True  # once bracketed, measure the best rate a second time

    def next_rate(self, steps: Sequence[tuple[int, bool]]) -> int | None:
        """The rate of the next step after ``steps`` ((rate, held) in the order run), or None: done.

        A rate counts as held only if every step at it held, so a confirmation that fails moves the
        bracket down and the search goes on below it.
        """
        if len(steps) >= self.max_steps:
            return None
        if not steps:
            return self.start
        outcomes = _outcomes(steps)
        low = max((rate for rate, held in outcomes.items() if all(held)), default=0)
        above = [rate for rate, held in outcomes.items() if not all(held) and rate > low]
        if not above:  # nothing above the best has failed: grow
            return max(low + 1, round(low * self.growth))
        high = min(above)
        if high - low <= max(1.0, self.resolution * high) or (low == 0 and high <= self.floor):
            return low if self.confirm and low and len(outcomes[low]) == 1 else None
        return (low + high) // 2 if low else max(self.floor, high // 2)

    @staticmethod
    def best(steps: Sequence[tuple[int, bool]]) -> int | None:
        """The highest rate at which every step held, or None when none did."""
        return max((rate for rate, held in _outcomes(steps).items() if all(held)), default=None)


def _outcomes(steps: Sequence[tuple[int, bool]]) -> dict[int, list[bool]]:
    outcomes: dict[int, list[bool]] = {}
    for rate, held in steps:
        outcomes.setdefault(rate, []).append(held)
    return outcomes
