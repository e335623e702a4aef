"""Resident memory per service, sampled on a thread of its own while the harness drives the load."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

Lookup = Callable[[], dict[str, list[int]]]  # service → its pids (the process and its children)
MIB = 1024 * 1024


def resident_bytes(pids: list[int]) -> int:
    """The RSS of these processes together (one that has ended counts 0)."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total


def sample(lookup: Lookup) -> dict[str, int]:
    return {service: resident_bytes(pids) for service, pids in lookup().items()}


@dataclass
class Samples:
    """Every sample of one stretch of time: service → bytes, in order."""

    by_service: dict[str, list[int]] = field(default_factory=dict)

    def add(self, values: dict[str, int]) -> None:
        for service, value in values.items():
            self.by_service.setdefault(service, []).append(value)

    def median(self) -> dict[str, float]:
        return {service: statistics.median(values) for service, values in self.by_service.items() if values}

    def peak(self) -> dict[str, int]:
        return {service: max(values) for service, values in self.by_service.items() if values}

    @property
    def count(self) -> int:
        return max((len(values) for values in self.by_service.values()), default=0)


class Sampler:
    """Samples every ``interval`` seconds into ``samples`` between ``start`` and ``stop``."""

    def __init__(self, lookup: Lookup, interval: float) -> None:
        self._lookup = lookup
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss-sampler", daemon=True)
        self.samples = Samples()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> Samples:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.samples.add(sample(self._lookup))  # and one at the very end
        return self.samples

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            self.samples.add(sample(self._lookup))
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))
