"""Comparing two worlds built from the same plan with ids of their own: each id replaced by its name."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def named(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` (JSON-able, ids and datetimes as text) with every id in ``names`` replaced by its name."""
    text = json.dumps(value, default=str, sort_keys=True)
    for id_, name in names.items():
        text = text.replace(id_, name)
    return json.loads(text)
