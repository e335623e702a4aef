"""The benchmarks' pure helpers: which benchmarks ``make bench`` runs, percentiles, reports. No fleet, no timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.__main__ import available, chosen


def _package(root: Path, name: str, *, runnable: bool = True) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    if runnable:
        (root / name / "__main__.py").write_text("")


def test_the_dispatcher_finds_every_runnable_benchmark_package_known_ones_first(tmp_path: Path) -> None:
    for name in ("zeta", "memory", "gateway", "common"):
        _package(tmp_path, name)
    _package(tmp_path, "helpers", runnable=False)
    (tmp_path / "loose.py").write_text("")

    assert available(tmp_path) == ["gateway", "memory", "zeta"]


def test_the_dispatcher_runs_the_named_benchmarks_or_all_and_names_an_unknown_one() -> None:
    known = ["gateway", "events", "memory"]

    assert chosen([""], known) == known
    assert chosen([], known) == known
    assert chosen(["memory,events", "events"], known) == ["memory", "events"]
    with pytest.raises(ValueError, match="unknown benchmark.*nope.*known: gateway, events, memory"):
        chosen(["events,nope"], known)


def test_this_repository_has_the_gateway_benchmark() -> None:
    assert available()[0] == "gateway"
