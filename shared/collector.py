"""The garbage collector, the same way in every process (each service through ``create_app``, the bot in
its ``main.run``): every collection timed, and the start-up heap out of its reach (docs/performance.md,
the event path)."""

from __future__ import annotations

import gc
import time
from typing import Any

from shared.metrics import GC_PAUSE


def after_start(service: str) -> None:
    """Once a process has started: time its collections, then freeze what it built to start."""
    time_garbage_collections(service)
    freeze_startup_heap()


def time_garbage_collections(service: str) -> None:
    """Observe every garbage collection of this process in ``GC_PAUSE`` (once per process: the first
    service started in it names the series). Every thread stands still meanwhile, so a long one shows
    in every latency of the service; prometheus_client's own collector counts collections, not their
    length."""
    if any(getattr(callback, "times_gc_pauses", False) for callback in gc.callbacks):
        return
    # bound now: the callback runs inside whatever allocation set off the collection, so it must take no
    # lock that code could hold (``labels()`` takes the metric's); a series' own lock only it takes, and
    # collections do not nest
    by_generation = [GC_PAUSE.labels(service, str(generation)) for generation in range(3)]
    started = 0.0

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started)

    on_collection.times_gc_pauses = True  # type: ignore[attr-defined]
    gc.callbacks.append(on_collection)


def freeze_startup_heap() -> None:
    """Put what the process built to start (modules, classes, the app, its clients and pools) out of the
    garbage collector's reach, once per process.

    Left in the oldest generation, all of it is walked by every full collection: 100–145 ms with the
    whole process stopped, its relay thread included, several times a minute under load, and every
    request and event in flight waits it out (docs/performance.md, the event path). Frozen, a full
    collection walks only what was built since (6–35 ms there). What startup left as garbage is collected
    first. A frozen object dropped later is still freed when nothing refers to it; only one caught in a
    reference cycle stays, and the start-up heap is mostly modules and classes that live as long as the
    process anyway.
    """
    if gc.get_freeze_count():  # an earlier app in this process (a test session) froze it already
        return
    gc.collect()
    gc.freeze()
