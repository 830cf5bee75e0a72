"""Exports of a result: CSV, XLSX and JSON (science.md §2 and §5, design.md "Result JSON")."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import stat
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils.escape import unescape

from analysis import export
from analysis.errors import InputError
from analysis.export import FORMULA_STARTS, to_csv_bytes, to_json_bytes, to_xlsx_bytes, write_result
from analysis.params import PARAMETER_SPECS, Parameters
from analysis.pipeline import run_file
from analysis.result import METRIC_KEYS, STATUSES

SHEETS = [
    "rows",
    "models",
    "fragments",
    "O-acetylation",
    "isomer series",
    "Log P checks",
    "invalid rows",
    "parameters & provenance",
]
# Row fields of science.md §5, and the parsed fields of §3 that every row carries.
REPORTED_FIELDS = [
    "row",
    "status",
    "predicted_rt",
    "pi_low",
    "pi_high",
    "residual",
    "studentized_residual",
    "p_value",
    "q_value",
    "flags",
    "fragment_of",
    "merged_volume",
    "isomer_group",
    "series",
    "reason",
]
PARSED_FIELDS = [
    "head",
    "isomer",
    "prefix",
    "sialic",
    "neutral",
    "total_sugars",
    "carbons",
    "double_bonds",
    "oxygen",
    "oac",
]
INPUT_FIELDS = ["name", "rt", "volume", "log_p", "anchor"]
# Cells a spreadsheet would run as formulas (or that start with a control character).
RISKY_CELLS = [
    '=HYPERLINK("http://x","click")',
    "+1",
    "-2",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "=1+2",
    "-A1*2",
]
RISKY_HEADER = "=Note"
# A CR inside a cell: unquoted, readers would start a new record at the '='.
SPLIT_CELL = "first line\r=2+3"


# ---------------------------------------------------------------- helpers


def _csv_frame(data: bytes) -> pd.DataFrame:
    """Read an exported CSV back as text, so nothing is re-interpreted."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _workbook(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def _text(value: object) -> object:
    """A cell's text as Excel shows it: OOXML stores control characters as _xHHHH_ escapes."""
    return unescape(value) if isinstance(value, str) else value


def _sheet_records(sheet) -> list[dict]:
    rows = sheet.iter_rows(values_only=True)
    header = [_text(value) for value in next(rows)]
    return [dict(zip(header, map(_text, values), strict=True)) for values in rows]


def _strict_json(data: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(data, parse_constant=refuse)


def _same_value(exported: object, original: object) -> bool:
    """An exported JSON value equals the in-memory one (missing ⇔ null, numbers exactly)."""
    if isinstance(original, list):
        return exported == original
    if original is None or original is pd.NA or (isinstance(original, float) and math.isnan(original)):
        return exported is None
    if isinstance(original, bool):
        return exported is original
    if isinstance(original, int | float):
        return type(exported) in (int, float) and exported == original and not isinstance(exported, bool)
    return exported == original


def _without_timing(document: dict) -> dict:
    provenance = dict(document["provenance"])
    for key in ("started", "finished", "duration_seconds"):
        provenance.pop(key)
    return {**document, "provenance": provenance}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def result(porcine_csv):
    return run_file(porcine_csv)


@pytest.fixture(scope="module")
def csv_bytes(result) -> bytes:
    return to_csv_bytes(result)


@pytest.fixture(scope="module")
def xlsx_bytes(result) -> bytes:
    return to_xlsx_bytes(result)


@pytest.fixture(scope="module")
def document(result) -> dict:
    return _strict_json(to_json_bytes(result))


@pytest.fixture(scope="module")
def risky_input(porcine_csv, tmp_path_factory) -> tuple[Path, list[str]]:
    """The first sample rows plus extra columns of formula-like text, and one invalid row.

    The invalid row's Name is itself formula-like, so the invalid-rows report carries a risky
    value too. Returns the file and the formula-like cells in row order.
    """
    with porcine_csv.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.reader(handle))
    header, body = records[0], records[1 : len(RISKY_CELLS)]
    body.append(['=cmd|" /C calc"!A0', "9.5", "1000", "1.0", "T"])
    cells = RISKY_CELLS[: len(body)]
    path = tmp_path_factory.mktemp("risky") / "risky.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        # Quote everything: a bare CR inside a cell must stay inside that cell.
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([*header, RISKY_HEADER, "Comment", "Remark"])
        for record, cell in zip(body, cells, strict=True):
            writer.writerow([*record, cell, cell, SPLIT_CELL])
    return path, cells


@pytest.fixture(scope="module")
def risky_result(risky_input):
    path, _ = risky_input
    return run_file(path, params=Parameters(on_invalid_rows="skip"))


# ---------------------------------------------------------------- CSV


def test_csv_has_one_line_per_input_row(csv_bytes, result, porcine_csv):
    n_input = len(pd.read_csv(porcine_csv))
    text = csv_bytes.decode("utf-8")
    assert text.endswith("\r\n")
    assert len(text.split("\r\n")[:-1]) == n_input + 1  # the header, then one line per row
    frame = _csv_frame(csv_bytes)
    assert len(frame) == n_input == len(result.rows)
    assert list(frame.columns) == list(result.rows.columns)
    assert frame["row"].astype(int).tolist() == result.rows["row"].tolist()
    assert frame["status"].tolist() == result.rows["status"].tolist()
    assert set(frame["status"]) <= set(STATUSES)


def test_csv_joins_flags_with_semicolons(csv_bytes, result):
    frame = _csv_frame(csv_bytes)
    expected = [";".join(flags) for flags in result.rows["flags"]]
    assert frame["flags"].tolist() == expected
    # The sample has rows with flags, so the join is exercised and not only the empty case.
    assert any(expected)


def test_csv_numbers_read_back_exactly(csv_bytes, result):
    frame = pd.read_csv(io.BytesIO(csv_bytes))
    for column in ("rt", "volume", "predicted_rt", "pi_low", "pi_high", "p_value", "q_value", "merged_volume"):
        pd.testing.assert_series_equal(frame[column], result.rows[column].astype(float), check_names=False)


# ---------------------------------------------------------------- CSV injection


def test_analysis_keeps_formula_like_cells_unchanged(risky_result, risky_input):
    _, cells = risky_input
    assert risky_result.rows[RISKY_HEADER].tolist() == cells
    assert risky_result.rows["Comment"].tolist() == cells
    assert RISKY_HEADER in risky_result.extra_columns
    # The formula-like Name is reported as invalid with its value as written.
    assert risky_result.summary["counts"]["invalid"] == 1
    assert risky_result.invalid_rows()["value"].str.startswith("=").any()


def test_csv_neutralises_formula_like_cells_and_headers(risky_result, risky_input):
    _, cells = risky_input
    frame = _csv_frame(to_csv_bytes(risky_result))
    assert "'" + RISKY_HEADER in frame.columns
    assert RISKY_HEADER not in frame.columns
    assert frame["Comment"].tolist() == ["'" + cell for cell in cells]
    assert frame["'" + RISKY_HEADER].tolist() == ["'" + cell for cell in cells]
    for column in frame.columns:
        assert not column.startswith(FORMULA_STARTS)
        assert not frame[column].str.startswith(FORMULA_STARTS).any(), column
    # The invalid row's Name is kept, apostrophe first.
    assert frame["name"].str.startswith("'=cmd").sum() == 1


def test_csv_keeps_a_cell_with_a_carriage_return_in_one_record(risky_result, risky_input):
    _, cells = risky_input
    assert risky_result.rows["Remark"].eq(SPLIT_CELL).all()
    data = to_csv_bytes(risky_result)
    frame = _csv_frame(data)
    assert len(frame) == len(cells)
    assert frame["Remark"].tolist() == [SPLIT_CELL] * len(cells)
    # A plain CSV reader sees the same records: the CR sits inside a quoted cell.
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(records) == len(cells) + 1
    assert {len(record) for record in records} == {len(frame.columns)}


def test_xlsx_has_no_formula_in_any_sheet(risky_result, risky_input):
    _, cells = risky_input
    book = _workbook(to_xlsx_bytes(risky_result))
    assert book.sheetnames == SHEETS
    checked = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    text = _text(cell.value)
                    assert not text.startswith(FORMULA_STARTS), (sheet.title, cell.coordinate, text)
                    checked += 1
    assert checked > 0
    records = _sheet_records(book["rows"])
    assert [record["Comment"] for record in records] == ["'" + cell for cell in cells]
    assert [record["'" + RISKY_HEADER] for record in records] == ["'" + cell for cell in cells]
    invalid = _sheet_records(book["invalid rows"])
    assert invalid and all(record["row"] == len(cells) for record in invalid)
    assert any(str(record["value"]).startswith("'=cmd") for record in invalid)


def test_neutralise_leaves_safe_values_alone():
    assert export.neutralise("GD1(36:1;O2)+OAc") == "GD1(36:1;O2)+OAc"
    assert export.neutralise("GD1+OAc(36:1;O2)") == "GD1+OAc(36:1;O2)"
    assert export.neutralise(-2.5) == -2.5
    assert export.neutralise(None) is None
    for start in FORMULA_STARTS:
        assert export.neutralise(start + "x") == "'" + start + "x"


# ---------------------------------------------------------------- XLSX


def test_xlsx_sheets(xlsx_bytes, result, porcine_csv):
    book = _workbook(xlsx_bytes)
    assert book.sheetnames == SHEETS
    rows = book["rows"]
    header = [cell.value for cell in rows[1]]
    assert header == list(result.rows.columns)
    assert rows.max_row - 1 == len(result.rows) == len(pd.read_csv(porcine_csv))
    records = _sheet_records(rows)
    assert [record["row"] for record in records] == result.rows["row"].tolist()
    assert [record["status"] for record in records] == result.rows["status"].tolist()
    assert [record["flags"] or "" for record in records] == [";".join(f) for f in result.rows["flags"]]
    for title, frame in (
        ("fragments", result.fragments),
        ("O-acetylation", result.oacetylation),
        ("isomer series", result.isomer_pairs),
        ("Log P checks", result.logp_checks),
        ("invalid rows", result.invalid_rows()),
    ):
        assert book[title].max_row - 1 == len(frame), title
        assert [cell.value for cell in book[title][1]] == list(frame.columns), title
    models = _sheet_records(book["models"])
    coefficients = sum(len(model.get("coefficients", [])) for model in result.models)
    assert len(models) == coefficients > 0


def test_xlsx_lists_every_parameter_with_its_default(xlsx_bytes):
    records = _sheet_records(_workbook(xlsx_bytes)["parameters & provenance"])
    parameters = {record["key"]: record["value"] for record in records if record["section"] == "parameters"}
    assert parameters == {spec.name: spec.default for spec in PARAMETER_SPECS}


def test_xlsx_provenance_has_the_input_sha256(xlsx_bytes, porcine_csv):
    records = _sheet_records(_workbook(xlsx_bytes)["parameters & provenance"])
    provenance = {record["key"]: record["value"] for record in records if record["section"] == "provenance"}
    assert provenance["input.sha256"] == hashlib.sha256(porcine_csv.read_bytes()).hexdigest()
    assert provenance["input.filename"] == porcine_csv.name
    metrics = {record["key"] for record in records if record["section"] == "metrics"}
    assert set(METRIC_KEYS) <= metrics


# ---------------------------------------------------------------- JSON


def test_json_top_level_and_metrics(document, result):
    assert {"summary", "metrics", "rows", "models", "parameters", "provenance"} <= set(document)
    assert set(METRIC_KEYS) <= set(document["metrics"])
    for key in METRIC_KEYS:
        assert _same_value(document["metrics"][key], result.metrics[key]), key
    assert document["parameters"] == result.parameters == Parameters().to_dict()
    assert document["summary"]["counts"] == result.summary["counts"]
    assert document["provenance"]["input"]["sha256"] == result.provenance["input"]["sha256"]
    assert len(document["models"]) == len(result.models)


def test_json_rows_carry_every_reported_field(document, result):
    rows = document["rows"]
    assert len(rows) == len(result.rows)
    for record in rows:
        assert set(REPORTED_FIELDS + PARSED_FIELDS + INPUT_FIELDS) <= set(record)
        assert isinstance(record["flags"], list)
        assert record["status"] in STATUSES
    assert [record["row"] for record in rows] == result.rows["row"].tolist()


def test_json_writes_missing_and_infinite_numbers_as_null(result):
    rows = result.rows.copy()
    rows["residual"] = rows["residual"].astype(float)
    rows.loc[rows.index[:3], "residual"] = [math.nan, math.inf, -math.inf]
    rows.loc[rows.index[0], "fragment_of"] = pd.NA
    odd = dataclasses.replace(result, rows=rows, metrics={**result.metrics, "loo_q2": math.nan})
    document = _strict_json(to_json_bytes(odd))  # parse_constant rejects NaN, Infinity and -Infinity
    assert [record["residual"] for record in document["rows"][:4]] == [None, None, None, rows["residual"].iloc[3]]
    assert document["rows"][0]["fragment_of"] is None
    assert document["metrics"]["loo_q2"] is None


def test_json_values_round_trip_exactly(document, result):
    for name, frame, records in (
        ("rows", result.rows, document["rows"]),
        ("fragments", result.fragments, document["fragments"]),
        ("oacetylation", result.oacetylation, document["oacetylation"]),
        ("isomer_pairs", result.isomer_pairs, document["isomer_pairs"]),
        ("logp_checks", result.logp_checks, document["logp_checks"]),
    ):
        assert len(records) == len(frame), name
        for position, record in enumerate(records):
            assert list(record) == [str(column) for column in frame.columns], name
            for column in frame.columns:
                original = frame[column].iloc[position]
                original = original.item() if hasattr(original, "item") else original
                assert _same_value(record[str(column)], original), (name, position, column, original)


def test_json_keeps_every_digit_of_a_number(result):
    # Tiny p-values and sums without a short decimal form lose digits at a fixed number of places.
    values = [1.441e-13, 2.5e-300, 0.1 + 0.2, 1 / 3, 123456789.12345679]
    rows = result.rows.copy()
    rows["p_value"] = rows["p_value"].astype(float)
    rows.loc[rows.index[: len(values)], "p_value"] = values
    document = _strict_json(to_json_bytes(dataclasses.replace(result, rows=rows)))
    assert [record["p_value"] for record in document["rows"][: len(values)]] == values


def test_json_keeps_formula_like_text_raw(risky_result, risky_input):
    _, cells = risky_input
    document = _strict_json(to_json_bytes(risky_result))
    assert [record["Comment"] for record in document["rows"]] == cells
    assert [issue["row"] for issue in document["invalid_rows"]] == [issue.row for issue in risky_result.issues]


# ---------------------------------------------------------------- determinism


def test_same_input_gives_identical_exports(porcine_csv, result):
    again = run_file(porcine_csv)
    assert to_csv_bytes(again) == to_csv_bytes(result)
    assert _without_timing(_strict_json(to_json_bytes(again))) == _without_timing(_strict_json(to_json_bytes(result)))
    first, second = _workbook(to_xlsx_bytes(result)), _workbook(to_xlsx_bytes(again))
    for title in SHEETS[:-1]:
        assert list(first[title].values) == list(second[title].values), title


# ---------------------------------------------------------------- write_result


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("suffix", ["csv", "json", "xlsx", "CSV"])
def test_write_result_writes_by_extension(result, tmp_path, suffix):
    path = write_result(result, tmp_path / f"out.{suffix}")
    assert path.read_bytes() == export.export_bytes(result, suffix.lower())
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{suffix}"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=oct)
def test_write_result_respects_the_umask(result, tmp_path, umask, mask):
    umask(mask)
    path = write_result(result, tmp_path / "out.csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_write_result_keeps_the_mode_of_a_replaced_file(result, tmp_path, umask):
    umask(0o022)
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o640)
    write_result(result, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _strict_json(path.read_bytes())["rows"]


def test_write_result_refuses_an_unknown_extension(result, tmp_path):
    with pytest.raises(InputError, match=r"\.csv, \.xlsx or \.json"):
        write_result(result, tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []


def test_write_result_refuses_a_missing_folder(result, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_result(result, tmp_path / "missing" / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_write_result_refuses_a_folder(result, tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(InputError, match="folder"):
        write_result(result, tmp_path / "out.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failed_write_leaves_no_partial_file(result, tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_bytes(b"previous result\n")

    def refuse(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", refuse)
    with pytest.raises(InputError, match="No space left on device"):
        write_result(result, path)
    # The previous file is intact and no temporary file is left behind.
    assert path.read_bytes() == b"previous result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_interrupted_write_leaves_no_file(result, tmp_path, monkeypatch):
    def interrupt(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(export.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_result(result, tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []
