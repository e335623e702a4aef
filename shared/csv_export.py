"""CSV downloads that a spreadsheet opens safely.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and
LibreOffice (``=HYPERLINK(...)`` in a payment note would run when the tutor opens the export). Such a cell
gets a leading apostrophe, which spreadsheets show as text; numbers, including negative ones, stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """``columns`` as the header, then each row (``None`` as an empty cell), as a download."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if value is None else safe_cell(value) for value in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
