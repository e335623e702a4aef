"""``PROOF_SCALE``: how big the proof suites (fault injection, fuzzing, load) are.

CI keeps it small (the default, 200); ``make soak`` runs the same tests at 1,000 or more.
Every suite derives its sizes from this one knob, so a soak run is the CI run, only larger.
"""

from __future__ import annotations

import os

DEFAULT_PROOF_SCALE = 200


def proof_scale() -> int:
    """The number of operations a proof suite performs (``PROOF_SCALE``, at least 1)."""
    raw = os.environ.get("PROOF_SCALE", "").strip()
    if not raw:
        return DEFAULT_PROOF_SCALE
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"PROOF_SCALE must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"PROOF_SCALE must be at least 1, not {value}")
    return value
