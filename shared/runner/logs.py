"""One request's trail across the fleet: every JSON log line carrying a correlation ID, in time order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from shared.runner.layout import FleetLayout


def service_log_files(layout: FleetLayout) -> list[Path]:
    """Each service's log with its rotated backups (``user-service.log.1`` ...), oldest first."""
    files: list[Path] = []
    for spec in layout.specs:
        current = layout.log_path(spec)
        backups = [p for p in current.parent.glob(f"{current.name}.*") if p.suffix[1:].isdigit()]
        backups.sort(key=lambda p: -int(p.suffix[1:]))
        files += [*backups, current]
    return [path for path in files if path.is_file()]


def _json_lines(path: Path) -> Iterator[dict]:
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.startswith(b"{"):
                continue  # a traceback or uvicorn's banner before logging was configured
            try:
                yield orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue


def lines_for_correlation_id(layout: FleetLayout, correlation_id: str) -> list[str]:
    matches = [
        line
        for path in service_log_files(layout)
        for line in _json_lines(path)
        if line.get("correlation_id") == correlation_id
    ]
    matches.sort(key=lambda line: str(line.get("ts", "")))
    return [orjson.dumps(line).decode() for line in matches]


def tail(layout: FleetLayout, lines: int = 20) -> list[str]:
    out: list[str] = []
    for spec in layout.specs:
        path = layout.log_path(spec)
        if path.is_file():
            out += [f"{spec.name}| {line}" for line in path.read_text(errors="replace").splitlines()[-lines:]]
    return out
