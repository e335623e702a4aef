"""Where a benchmark's figures go: one JSON file per run in ``var/bench-results/``, named by benchmark and time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.runner.layout import VAR_DIR

RESULTS_DIR = VAR_DIR / "bench-results"


def write_results(benchmark: str, started_at: datetime, data: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """``<directory>/<benchmark>-<UTC start>.json``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{benchmark}-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
