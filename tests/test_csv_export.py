"""CSV exports neutralise spreadsheet formulas in text cells and keep numbers numbers."""

from __future__ import annotations

import csv
import io

from shared.csv_export import csv_response, safe_cell


def test_text_that_a_spreadsheet_would_run_is_quoted_and_numbers_stay() -> None:
    for formula in ('=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(formula) == "'" + formula
    for harmless in ("-1000", "+5", "-0.5", "plain", "a=b", "", 42, -7, None):
        assert safe_cell(harmless) == harmless


def test_a_csv_response_is_a_download_with_safe_cells() -> None:
    response = csv_response(["kind", "amount", "reason"], [["refund", -500, "=cmd()"], ["top_up", 100, None]], "s.csv")
    assert response.media_type == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="s.csv"'
    rows = list(csv.DictReader(io.StringIO(bytes(response.body).decode())))
    assert rows == [
        {"kind": "refund", "amount": "-500", "reason": "'=cmd()"},
        {"kind": "top_up", "amount": "100", "reason": ""},
    ]
