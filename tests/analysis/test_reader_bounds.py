"""Every dimension of an uploaded file is bounded, and the refusal names the bound."""

from __future__ import annotations

import pytest

from analysis import reader
from analysis.errors import TableError
from analysis.reader import MAX_CELL_CHARS, MAX_COLUMNS, read_table
from tests import hostile_files as hostile


def refusal(data: bytes, name: str) -> str:
    with pytest.raises(TableError) as caught:
        read_table(data, filename=name)
    return caught.value.message


def test_a_header_wider_than_the_column_bound_is_refused_before_any_row_is_read():
    assert len(read_table(hostile.wide_csv(MAX_COLUMNS - 5), filename="w.csv").extra_columns) == MAX_COLUMNS - 5
    message = refusal(hostile.wide_csv(MAX_COLUMNS - 4), "w.csv")
    assert f"{MAX_COLUMNS + 1:,} columns" in message and f"at most {MAX_COLUMNS:,}" in message


def test_a_row_with_more_cells_than_the_bound_is_refused():
    data = hostile.rows_csv(2) + b"GD1(34:1;O2),8,1,1,T" + b"," * MAX_COLUMNS + b"\n"
    assert f"row 3 has {MAX_COLUMNS + 5:,} cells" in refusal(data, "r.csv")


@pytest.mark.parametrize("build, name", [(hostile.long_cell_csv, "c.csv"), (hostile.long_cell_xlsx, "c.xlsx")])
def test_a_cell_longer_than_a_spreadsheet_cell_is_refused(build, name):
    assert read_table(build(MAX_CELL_CHARS), filename=name).records[-1][-1] == "y" * MAX_CELL_CHARS
    message = refusal(build(MAX_CELL_CHARS + 1), name)
    assert f"{MAX_CELL_CHARS:,}" in message and "spreadsheet cell holds" in message


def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch):
    bomb = hostile.zip_bomb_xlsx(50)
    assert len(bomb) < 1_000_000
    # openpyxl is never asked to open it
    monkeypatch.setattr("openpyxl.load_workbook", lambda *a, **k: pytest.fail("the bomb was opened"))
    message = refusal(bomb, "bomb.xlsx")
    assert "expands" in message and "100 times" in message and "zip bomb" in message


def test_a_workbook_expanding_beyond_the_total_bound_is_refused(monkeypatch):
    monkeypatch.setattr(reader, "XLSX_MAX_UNCOMPRESSED", 10_000)  # the sample workbook inflates to ~17 KB
    assert "more than the 9.8 KB this server reads" in refusal(hostile.workbook(), "plain.xlsx")


def test_xml_entities_in_a_workbook_are_refused_not_expanded():
    assert "declares entities" in refusal(hostile.entity_expansion_xlsx(), "lol.xlsx")


def test_a_sheet_that_declares_more_columns_than_it_fills_is_read_normally():
    table = read_table(hostile.padded_xlsx(), filename="padded.xlsx")
    assert len(table.records) == 2 and table.extra_columns == []
