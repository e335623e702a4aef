"""How a benchmark talks while it runs: ``[bench] ...`` lines on standard error (the tables go to standard output)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
