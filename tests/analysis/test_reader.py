"""Accepted input formats and features (science.md §2): what a well-formed table reads as."""

from __future__ import annotations

import codecs
import csv
import io

import openpyxl
import pytest

from analysis.params import Parameters
from analysis.pipeline import load_table, run_file
from analysis.reader import read_table

HEADER = ["Name", "RT", "Volume", "Log P", "Anchor"]
# (name, RT, volume, Log P, anchor) as the instrument software writes them.
PEAKS = [
    ("GD1(34:1;O2)", "7.588", "530172", "0.44", "T"),
    ("GD1(36:1;O2)", "8.059", "401790", "0.96", "F"),
    ("GM1a(36:1;O2)", "10.452", "500000", "4.00", "true"),
    ("GM3(36:1;O2)", "10.606", "2000000", "7.74", "no"),
    ("GT1b(36:1;O2)", "8.701", "1200000", "-0.94", "1"),
]
EXPECTED_NAMES = [p[0] for p in PEAKS]
EXPECTED_RT = [7.588, 8.059, 10.452, 10.606, 8.701]
EXPECTED_VOLUME = [530172.0, 401790.0, 500000.0, 2000000.0, 1200000.0]
EXPECTED_LOG_P = [0.44, 0.96, 4.00, 7.74, -0.94]
EXPECTED_ANCHOR = [True, False, True, False, True]


def delimited(rows, delimiter=",", newline="\n", header=HEADER) -> str:
    """The table as a spreadsheet program saves it: cells holding the delimiter are quoted."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows([header, *rows])
    return buffer.getvalue()


def assert_peaks(table) -> None:
    frame = table.frame
    assert table.issues == []
    assert frame["row"].tolist() == [1, 2, 3, 4, 5]
    assert frame["name"].tolist() == EXPECTED_NAMES
    assert frame["rt"].tolist() == pytest.approx(EXPECTED_RT)
    assert frame["volume"].tolist() == pytest.approx(EXPECTED_VOLUME)
    assert frame["log_p"].tolist() == pytest.approx(EXPECTED_LOG_P)
    assert frame["anchor"].tolist() == EXPECTED_ANCHOR
    assert frame["valid"].all()


def workbook_bytes(sheets: list[tuple[str, list[list[object]]]]) -> bytes:
    """An .xlsx with the given sheets; strings starting with '=' are stored as text, not formulas."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for r, values in enumerate(rows, start=1):
            for c, value in enumerate(values, start=1):
                if value is None:
                    continue
                cell = sheet.cell(row=r, column=c)
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- delimited text ---------------------------------------------------------------------------


def test_comma_csv():
    table = load_table(delimited(PEAKS).encode(), filename="peaks.csv")
    assert_peaks(table)
    info = table.source_info()
    assert info["format"] == "csv"
    assert info["delimiter"] == "comma"
    assert info["filename"] == "peaks.csv"
    assert info["rows"] == 5


def test_semicolon_csv_with_decimal_commas():
    rows = [(n, rt.replace(".", ","), v, lp.replace(".", ","), a) for n, rt, v, lp, a in PEAKS]
    assert rows[0][1] == "7,588"
    table = load_table(delimited(rows, ";").encode())
    assert_peaks(table)
    assert table.source_info()["delimiter"] == "semicolon"
    assert "decimal commas were read as decimal points" in table.notices


def test_semicolon_csv_with_decimal_points():
    table = load_table(delimited(PEAKS, ";").encode())
    assert_peaks(table)
    assert table.notices == []


def test_tsv():
    table = load_table(delimited(PEAKS, "\t").encode(), filename="peaks.tsv")
    assert_peaks(table)
    assert table.source_info()["format"] == "tsv"
    assert table.source_info()["delimiter"] == "tab"


def test_tsv_with_decimal_commas():
    rows = [(n, rt.replace(".", ","), v, lp.replace(".", ","), a) for n, rt, v, lp, a in PEAKS]
    assert_peaks(load_table(delimited(rows, "\t").encode()))


def test_crlf_line_endings():
    text = delimited(PEAKS, newline="\r\n")
    assert "\r\n" in text
    table = load_table(text.encode())
    assert_peaks(table)
    # The last column must not keep a stray carriage return.
    with_note = delimited([(*p, "note") for p in PEAKS], newline="\r\n", header=[*HEADER, "Note"])
    result = run_file(with_note.encode())
    assert result.rows["Note"].tolist() == ["note"] * 5


def test_old_mac_line_endings():
    assert_peaks(load_table(delimited(PEAKS, newline="\r").encode()))


def test_quoted_cells_with_delimiters_inside():
    rows = [(*p, "a, b; c") for p in PEAKS]
    result = run_file(delimited(rows, header=[*HEADER, "Comment"]).encode())
    assert result.rows["Comment"].tolist() == ["a, b; c"] * 5


def test_utf8_bom_sample(tiny_csv):
    assert tiny_csv.read_bytes().startswith(codecs.BOM_UTF8)
    table = load_table(tiny_csv)
    assert table.issues == []
    assert table.extra_columns == []  # the BOM did not turn "Name" into an unknown column
    assert table.frame["name"].tolist() == [
        "GD1a(36:1;O2)",
        "GM1a(36:1;O2)",
        "GM3(36:1;O2)",
        "GD3(36:1;O2)",
        "GT1b(36:1;O2)",
    ]
    assert table.frame["isomer"].tolist() == ["a", "a", "", "", "b"]
    assert table.frame["rt"].tolist() == pytest.approx([9.572, 10.452, 10.606, 10.126, 8.701])
    assert table.filename == "tiny_with_bom.csv"
    result = run_file(tiny_csv)
    assert result.rows["row"].tolist() == [1, 2, 3, 4, 5]
    assert "invalid" not in set(result.rows["status"])


def test_utf8_bom_from_bytes():
    assert_peaks(load_table(codecs.BOM_UTF8 + delimited(PEAKS).encode()))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(encoding):
    text = delimited(PEAKS, ";")
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[encoding]
    data = bom + text.encode(encoding)
    assert data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    assert_peaks(load_table(data))


def test_non_ascii_in_extra_columns_survives_utf8():
    rows = [(*p, "µg/mL — 1 µL") for p in PEAKS]
    result = run_file(delimited(rows, header=[*HEADER, "Remarque é"]).encode())
    assert result.rows["Remarque é"].tolist() == ["µg/mL — 1 µL"] * 5


def test_reading_from_a_path(tmp_path):
    path = tmp_path / "peaks.csv"
    path.write_bytes(delimited(PEAKS).encode())
    table = load_table(path)
    assert_peaks(table)
    assert table.filename == "peaks.csv"
    assert table.n_bytes == path.stat().st_size
    assert_peaks(load_table(str(path)))


# --- XLSX ---------------------------------------------------------------------------------------


def xlsx_peaks() -> list[list[object]]:
    return [
        ["Name", "RT", "Volume", "Log P", "Anchor", "Note"],
        ["GD1(34:1;O2)", 7.588, 530172, 0.44, True, "+OAc"],
        ["GD1(36:1;O2)", 8.059, 401790, 0.96, False, "=1+1"],
        ["GM1a(36:1;O2)", 10.452, 500000.0, 4, 1, None],
        ["GM3(36:1;O2)", 10.606, 2000000, 7.74, "F", "@note"],
        ["GT1b(36:1;O2)", 8.701, 1200000, -0.94, "yes", "-3"],
    ]


def test_xlsx_numbers_and_booleans():
    table = load_table(workbook_bytes([("Peaks", xlsx_peaks())]), filename="peaks.xlsx")
    assert_peaks(table)
    assert table.source_info()["format"] == "xlsx"
    assert table.sheet == "Peaks"
    assert table.frame["Note"].tolist() == ["+OAc", "=1+1", "", "@note", "-3"]


def test_xlsx_title_sheet_before_the_data_sheet():
    title = [["Porcine brain extract"], ["Exported 2024-05-01"], [], ["Instrument", "QTOF"]]
    data = workbook_bytes([("Title", title), ("Data", xlsx_peaks())])
    table = load_table(data)
    assert table.sheet == "Data"
    assert_peaks(table)


def test_xlsx_blank_rows_keep_sheet_row_numbers():
    rows = xlsx_peaks()
    sheet = [rows[0], rows[1], [], rows[2], [None, None], rows[3], rows[4], rows[5]]
    table = load_table(workbook_bytes([("Peaks", sheet)]))
    assert table.frame["row"].tolist() == [1, 3, 5, 6, 7]
    assert table.frame["name"].tolist() == EXPECTED_NAMES
    assert "2 blank rows ignored" in table.notices


def test_xlsx_header_below_blank_rows():
    table = load_table(workbook_bytes([("Peaks", [[], [], *xlsx_peaks()])]))
    assert_peaks(table)


def test_xlsx_extra_columns_reach_the_result():
    result = run_file(workbook_bytes([("Peaks", xlsx_peaks())]), params=Parameters(min_anchors=2))
    assert result.rows["Note"].tolist() == ["+OAc", "=1+1", "", "@note", "-3"]
    assert result.extra_columns == ["Note"]


# --- header aliases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        ["Name", "RT", "Volume", "Log P", "Anchor"],
        ["Compound", "retention_time", "Peak Area", "clogP", "MS/MS"],
        ["compound_name", "RT (min)", "area", "log_p", "is_anchor"],
        ["LIPID", "Retention Time", "Intensity", "LogP", "Confirmed"],
        ["  name  ", "rt_min", "VOLUME", "Log-P", "anchor"],
        ["Compound Name", "Retention time (min)", "peak_area", "CLOGP", "msms"],
        ["Lipid", "RT [min]", "Peak-Area", "log(P)", "Is Anchor?"],
    ],
)
def test_header_aliases(header):
    table = load_table(delimited(PEAKS, header=header).encode())
    assert_peaks(table)
    assert table.extra_columns == []


def test_header_aliases_in_another_column_order():
    header = ["Compound", "Confirmed", "RT (min)", "Peak Area", "clogP"]
    rows = [(p[0], p[4], p[1], p[2], p[3]) for p in PEAKS]
    assert_peaks(load_table(delimited(rows, header=header).encode()))


def test_columns_are_mapped_to_canonical_names():
    raw = read_table(delimited(PEAKS, header=["Compound", "retention_time", "Peak Area", "clogP", "MS/MS"]).encode())
    assert raw.field_index == {"name": 0, "rt": 1, "volume": 2, "log_p": 3, "anchor": 4}
    assert raw.columns == ["name", "rt", "volume", "log_p", "anchor"]


# --- extra columns, blank rows, repeated names, formula-looking cells ---------------------------


def test_extra_columns_are_carried_through_untouched():
    header = ["Sample ID", *HEADER, "m/z", "Comment"]
    rows = [
        ("S-001", *PEAKS[0], "1234.5670", "  leading and trailing spaces  "),
        ("S-002", *PEAKS[1], "007", ""),
        ("S-003", *PEAKS[2], "1e3", "ünïcödé"),
        ("S-004", *PEAKS[3], "NaN", "TRUE"),
        ("S-005", *PEAKS[4], "-0", "x"),
    ]
    result = run_file(delimited(rows, header=header).encode(), params=Parameters(min_anchors=2))
    assert result.extra_columns == ["Sample ID", "m/z", "Comment"]
    assert result.rows["Sample ID"].tolist() == ["S-001", "S-002", "S-003", "S-004", "S-005"]
    assert result.rows["m/z"].tolist() == ["1234.5670", "007", "1e3", "NaN", "-0"]
    assert result.rows["Comment"].tolist() == ["  leading and trailing spaces  ", "", "ünïcödé", "TRUE", "x"]
    assert result.rows["name"].tolist() == EXPECTED_NAMES
    # Extra columns sit between the input columns and the result columns.
    columns = list(result.rows.columns)
    assert columns.index("anchor") < columns.index("Sample ID") < columns.index("status")


@pytest.mark.parametrize("clash", ["status", "Valid", "invalid_reason", "row", "flags", "head"])
def test_extra_column_named_like_a_result_column_keeps_its_values(clash):
    rows = [(*p, f"input-{i}") for i, p in enumerate(PEAKS, start=1)]
    result = run_file(delimited(rows, header=[*HEADER, clash]).encode(), params=Parameters(min_anchors=2))
    renamed = f"{clash} (input)"
    assert result.extra_columns == [renamed]
    assert result.rows[renamed].tolist() == [f"input-{i}" for i in range(1, 6)]
    assert set(result.rows["status"]) <= {"valid", "outlier", "fragment", "unassessed"}
    table = load_table(delimited(rows, header=[*HEADER, clash]).encode())
    assert any(renamed in notice for notice in table.notices)


def test_renamed_column_does_not_overwrite_a_column_already_called_so():
    header = [*HEADER, "status", "status (input)"]
    rows = [(*p, "a", "b") for p in PEAKS]
    table = load_table(delimited(rows, header=header).encode())
    assert table.extra_columns == ["status (input) 2", "status (input)"]
    assert table.frame["status (input) 2"].tolist() == ["a"] * 5
    assert table.frame["status (input)"].tolist() == ["b"] * 5


def test_unnamed_extra_column_with_values_is_kept():
    rows = [(*p, "", f"v{i}") for i, p in enumerate(PEAKS)]
    table = load_table(delimited(rows, header=[*HEADER, "", ""]).encode())
    assert table.extra_columns == ["column_7"]
    assert table.frame["column_7"].tolist() == [f"v{i}" for i in range(5)]


def test_unnamed_extra_column_does_not_take_an_existing_name():
    rows = [(*p, f"unnamed{i}", f"named{i}") for i, p in enumerate(PEAKS)]
    table = load_table(delimited(rows, header=[*HEADER, "", "column_6"]).encode())
    assert sorted(table.extra_columns) == ["column_6", "column_6 2"]
    assert table.frame["column_6"].tolist() == [f"named{i}" for i in range(5)]
    assert table.frame["column_6 2"].tolist() == [f"unnamed{i}" for i in range(5)]


def test_delimiter_only_lines_before_the_header_are_skipped():
    text = "\t\t\n,,,,\n;;\n" + delimited(PEAKS, "\t")
    table = load_table(text.encode())
    assert table.source_info()["delimiter"] == "tab"
    assert_peaks(table)


def test_blank_rows_are_ignored_and_row_numbers_stay_those_of_the_file():
    lines = [
        ",".join(HEADER),
        ",".join(PEAKS[0]),
        "",
        ",".join(PEAKS[1]),
        ",,,,",
        "   ",
        ",".join(PEAKS[2]),
        ",".join(PEAKS[3]),
        "",
        ",".join(PEAKS[4]),
        "",
        "",
    ]
    data = "\n".join(lines).encode()
    table = load_table(data)
    assert table.frame["row"].tolist() == [1, 3, 6, 7, 9]
    assert table.frame["name"].tolist() == EXPECTED_NAMES
    assert "5 blank rows ignored" in table.notices
    result = run_file(data, params=Parameters(min_anchors=2))
    assert result.rows["row"].tolist() == [1, 3, 6, 7, 9]


def test_blank_lines_before_the_header_do_not_count_as_rows():
    data = ("\n\n" + delimited(PEAKS)).encode()
    table = load_table(data)
    assert table.frame["row"].tolist() == [1, 2, 3, 4, 5]
    assert_peaks(table)


def test_row_numbers_refer_to_data_rows_in_issues():
    rows = [PEAKS[0], PEAKS[1], ("GD1(36:1;O2)", "oops", "1", "1", "T")]
    table = load_table(delimited(rows).encode())
    assert [(issue.row, issue.column) for issue in table.issues] == [(3, "RT")]


def test_repeated_names_are_kept():
    rows = [
        ("GD1(36:1;O2)", "8.059", "401790", "0.96", "T"),
        ("GD1(36:1;O2)", "8.512", "301790", "0.96", "T"),
        ("GD1(36:1;O2)", "8.059", "401790", "0.96", "T"),  # an exact duplicate line too
        ("GM3(36:1;O2)", "10.606", "2000000", "7.74", "F"),
    ]
    result = run_file(delimited(rows).encode())
    assert len(result.rows) == 4
    assert result.rows["row"].tolist() == [1, 2, 3, 4]
    assert result.rows["name"].tolist() == [r[0] for r in rows]
    assert (result.rows["isomer_group"] == "GD1(36:1;O2)").sum() == 3


def test_formula_looking_cells_are_data():
    header = [*HEADER, "Formula", "Tag"]
    rows = [
        ("GD1+OAc(36:1;O2)", "8.1", "1000", "1.1", "F", "=1+1", "+OAc"),
        ("GD1(36:1;O2)", "8.0", "1000", "1.0", "T", '=HYPERLINK(""http://x"")', "@SUM(A1)"),
        ("GM3(36:1;O2)", "10.6", "1000", "7.7", "F", "-2+3", "\tstarts with a tab"),
    ]
    text = ",".join(header) + "\n"
    for row in rows:
        text += ",".join(f'"{cell}"' if cell.startswith(("=", "\t")) else cell for cell in row) + "\n"
    result = run_file(text.encode())
    assert result.rows["Formula"].tolist() == ["=1+1", '=HYPERLINK("http://x")', "-2+3"]
    assert result.rows["Tag"].tolist() == ["+OAc", "@SUM(A1)", "\tstarts with a tab"]
    assert result.rows["name"].iloc[0] == "GD1+OAc(36:1;O2)"
    assert result.rows["prefix"].iloc[0] == "GD1+OAc"
    assert int(result.rows["oac"].iloc[0]) == 1
    assert "invalid" not in set(result.rows["status"])


def test_multiline_quoted_value_in_an_extra_column_is_kept_with_a_notice():
    header = [*HEADER, "Comment"]
    text = ",".join(header) + "\n"
    text += ",".join(PEAKS[0]) + ',"first line\nsecond line"\n'
    for peak in PEAKS[1:]:
        text += ",".join(peak) + ",plain\n"
    table = load_table(text.encode())
    assert_peaks(table)
    assert table.frame["Comment"].tolist() == ["first line\nsecond line"] + ["plain"] * 4
    assert any("spanning several lines" in notice and "Comment" in notice for notice in table.notices)


def test_line_break_at_the_end_of_a_quoted_required_cell_is_whitespace():
    text = ",".join(HEADER) + "\n"
    text += '"' + PEAKS[0][0] + '\n",' + ",".join(PEAKS[0][1:]) + "\n"
    text += "".join(",".join(peak) + "\n" for peak in PEAKS[1:])
    assert_peaks(load_table(text.encode()))


def test_last_line_without_newline():
    text = delimited(PEAKS).rstrip("\n")
    assert_peaks(load_table(text.encode()))
    quoted = text + ',"closed"'
    table = load_table(quoted.replace(",".join(HEADER), ",".join([*HEADER, "Q"]), 1).encode())
    assert table.frame["Q"].tolist() == ["", "", "", "", "closed"]


def test_short_rows_are_padded_not_dropped():
    rows = [*PEAKS[:4], ("GT1b(36:1;O2)", "8.701")]
    table = load_table(delimited(rows).encode())
    assert table.frame["row"].tolist() == [1, 2, 3, 4, 5]
    assert [(i.row, i.column, i.reason) for i in table.issues] == [
        (5, "Volume", "missing value"),
        (5, "Log P", "missing value"),
        (5, "Anchor", "missing value"),
    ]


def test_trailing_empty_cells_beyond_the_header_are_harmless():
    rows = [(*p, "", "") for p in PEAKS]
    assert_peaks(load_table(delimited(rows).encode()))


def test_anchor_spellings():
    spellings = ["T", "F", "t", "f", "TRUE", "false", "Yes", "NO", "1", "0", " true "]
    rows = [("GD1(36:1;O2)", "8.0", "1000", "1.0", s) for s in spellings]
    table = load_table(delimited(rows).encode())
    assert table.issues == []
    assert table.frame["anchor"].tolist() == [True, False, True, False, True, False, True, False, True, False, True]


def test_numbers_with_signs_exponents_and_spaces():
    rows = [
        ("GD1(36:1;O2)", " 8.0 ", "1e5", "+1.5", "T"),
        ("GD1(36:1;O2)", ".5", "2.5E+3", "-.25", "F"),
    ]
    table = load_table(delimited(rows).encode())
    assert table.issues == []
    assert table.frame["rt"].tolist() == [8.0, 0.5]
    assert table.frame["volume"].tolist() == [1e5, 2500.0]
    assert table.frame["log_p"].tolist() == [1.5, -0.25]


def test_log_p_is_optional_and_its_absence_is_said():
    raw = read_table(b"Name,RT,Volume,Anchor\nGM3(36:1;O2),10.6,100,T\n", filename="t.csv")
    assert "log_p" not in raw.field_index and raw.columns[:5] == ["name", "rt", "volume", "log_p", "anchor"]
    assert any("no Log P column" in notice for notice in raw.notices)
    with_it = read_table(b"Name,RT,Volume,Log P,Anchor\nGM3(36:1;O2),10.6,100,1.5,T\n", filename="t.csv")
    assert not any("Log P" in notice for notice in with_it.notices)


def test_ms_dial_annotations_ms1_only_and_molecular_species_are_taken_apart():
    from analysis.params import Parameters
    from analysis.pipeline import load_table

    data = (
        b"Name,RT,Volume,Anchor\n"
        b"w/o MS2: GM3 34:1;O2|GM3 18:1;O2/16:0,8.1,100,T\n"
        b"GM3 36:1;O2|GM3 18:1;O2/18:0,9.1,100,T\n"
        b"GM3(38:1;O2),10.1,100,F\n"
        b"W/O MS2:GD1a 36:1;2O,9.5,100,F\n"
        b"w/o MS2: GX1 36:1;O2,9.5,100,F\n"
    )
    table = load_table(data, filename="msdial.csv", params=Parameters(on_invalid_rows="skip"))
    frame = table.frame.set_index("row")
    assert list(frame["canonical_name"][:4]) == ["GM3(34:1;O2)", "GM3(36:1;O2)", "GM3(38:1;O2)", "GD1a(36:1;O2)"]
    assert frame.loc[1, "name"] == "w/o MS2: GM3 34:1;O2|GM3 18:1;O2/16:0"  # as written, next to the canonical
    assert list(frame["anchor"][:4]) == [False, True, False, False]  # MS1 only: never an anchor
    assert list(frame["molecular_species"][:3]) == ["GM3 18:1;O2/16:0", "GM3 18:1;O2/18:0", ""]
    assert "molecular_species" in table.extra_columns
    assert any("3 rows are annotated 'w/o MS2:'" in n and "1 marked as anchor " in n for n in table.notices)
    (issue,) = table.issues  # a bad name is reported as written
    assert issue.row == 5 and issue.value == "w/o MS2: GX1 36:1;O2" and "'X'" in issue.reason


def test_a_column_mapping_names_the_columns_and_guides_delimiter_and_sheet():
    from analysis.reader import check_mapping
    from tests import hostile_files

    data = b"Metabolite name;Average Rt(min);Area;MS/MS matched;Name\nGM3 36:1;O2;9,1;100;TRUE;x\n"
    mapping = {"Name": "metabolite name", "RT": "Average Rt(min)", "Anchor": "MS/MS matched"}
    raw = read_table(data, filename="m.csv", mapping=mapping)
    # Without the mapping only Area and Name are known, and the comma would split the name
    assert raw.delimiter == ";"
    assert raw.field_index == {"name": 0, "rt": 1, "volume": 2, "anchor": 3}
    assert [name for name, _ in raw.extra_columns] == ["Name (input)"]  # the guessed Name is kept, not used
    assert raw.mapping == {"name": "metabolite name", "rt": "Average Rt(min)", "anchor": "MS/MS matched"}
    assert check_mapping([("Log P", "cLogP2"), ("anchor", "Confirmed?")]) == {"log_p": "cLogP2", "anchor": "Confirmed?"}
    workbook = read_table(hostile_files.workbook(), filename="w.xlsx", mapping={"Volume": "Log P", "Log P": "Volume"})
    assert (workbook.field_index["volume"], workbook.field_index["log_p"]) == (3, 2)
