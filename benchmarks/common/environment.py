"""Reading a benchmark's settings from ``BENCH_*`` variables: one parser for every benchmark, so a bad
value gets the same clear message (``bench_main`` turns the ValueError into exit 2)."""

from __future__ import annotations

from collections.abc import Mapping


def quick_requested(environ: Mapping[str, str], quick: bool = False) -> bool:
    """``--quick`` or ``BENCH_QUICK`` set to anything but empty, 0, false or no."""
    return quick or environ.get("BENCH_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def whole_number(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """``environ[name]`` as an integer of at least ``minimum``, or ``default`` when unset or empty."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, not {raw!r}")
    return value


def positive_number(environ: Mapping[str, str], name: str, default: float | None) -> float | None:
    """``environ[name]`` as a number above 0, or ``default`` when unset or empty."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"{name} must be a number above 0, not {raw!r}")
    return value
