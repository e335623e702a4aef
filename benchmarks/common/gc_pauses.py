"""The garbage-collection pauses of the services during a phase, from their own ``/metrics``
(``python_gc_pause_seconds``, shared/metrics.py): a collection stops the whole process, so a long one is
a stall every request and event in flight waits out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "python_gc_pause_seconds"


@dataclass(frozen=True)
class Pauses:
    """Collections of one generation in one service: how many, and their total length."""

    count: int
    seconds: float

    def since(self, earlier: Pauses) -> Pauses:
        return Pauses(self.count - earlier.count, self.seconds - earlier.seconds)


Snapshot = dict[str, dict[str, Pauses]]  # service -> generation -> pauses so far


async def snapshot(urls: Mapping[str, str]) -> Snapshot:
    """Each service's pauses so far, by generation (a service that does not answer is left out)."""
    found: Snapshot = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service, url in urls.items():
            try:
                text = (await client.get(f"{url}/metrics")).text
            except httpx.HTTPError:
                continue
            found[service] = _pauses(text)
    return found


def difference(after: Snapshot, before: Snapshot) -> dict[str, dict[str, dict[str, float]]]:
    """What each service's collections added between two snapshots: count and milliseconds per generation."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for service, generations in after.items():
        earlier = before.get(service, {})
        result[service] = {
            generation: {"count": d.count, "ms": round(d.seconds * 1000, 1)}
            for generation, pauses in sorted(generations.items())
            if (d := pauses.since(earlier.get(generation, Pauses(0, 0.0)))).count
        }
    return result


def _pauses(text: str) -> dict[str, Pauses]:
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            generation = sample.labels.get("generation", "?")
            if sample.name == f"{METRIC}_count":
                counts[generation] = int(sample.value)
            elif sample.name == f"{METRIC}_sum":
                sums[generation] = sample.value
    return {generation: Pauses(count, sums.get(generation, 0.0)) for generation, count in counts.items()}
