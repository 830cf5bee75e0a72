"""Malformed input (science.md §2): never a traceback, never a silent drop.

Every file in the table below gets exactly one kind of outcome:
- a structural problem rejects the whole file with a TableError naming the problem;
- row problems are reported per row (row, column, value, reason); with on_invalid_rows="skip" the
  rows come back with status "invalid" while the others are analysed as if the bad rows were
  absent, and with "reject" nothing is analysed (InvalidRowsError);
- a well-formed file that cannot support a model still completes, every row "unassessed".
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import math
import zipfile
from collections.abc import Callable

import numpy as np
import openpyxl
import pytest

from analysis.errors import InvalidRowsError, TableError
from analysis.params import Parameters
from analysis.pipeline import load_table, run_file
from analysis.result import AnalysisResult

DOCUMENTED_ERRORS = (TableError, InvalidRowsError)
HEADER = ["Name", "RT", "Volume", "Log P", "Anchor"]
SKIP = Parameters(on_invalid_rows="skip")
SIALIC = {"M": 1, "D": 2, "T": 3}
NEUTRAL = {"1": 4, "3": 2}


def _base_peaks() -> list[list[str]]:
    """20 well-formed peaks, 14 anchors, RT from a composition rule plus a little scatter."""
    wobble = [0.012, -0.018, 0.005, 0.02, -0.01, 0.0, -0.006, 0.015, -0.013, 0.008, 0.003, -0.02]
    peaks = []
    for head in ("GM1", "GD1", "GT1b", "GM3"):
        for carbons, bonds in ((34, 1), (36, 1), (36, 2), (38, 1), (40, 1)):
            i = len(peaks)
            rt = 1.0 + 0.25 * carbons - 0.45 * bonds - 0.6 * SIALIC[head[1]] - 0.3 * NEUTRAL[head[2]] + wobble[i % 12]
            log_p = 0.1 * carbons - 3 * SIALIC[head[1]]
            anchor = "T" if i % 3 != 2 else "F"
            peaks.append([f"{head}({carbons}:{bonds};O2)", f"{rt:.3f}", str(100000 + 1000 * i), f"{log_p:.2f}", anchor])
    return peaks


BASE = _base_peaks()


def to_csv(rows: list[list[str]], header: list[str] = HEADER, delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue().encode()


def with_bad_rows(*bad: list[str], at: int = 3) -> bytes:
    """The base table with `bad` rows inserted after its first `at` rows (they become rows at+1...)."""
    return to_csv([*BASE[:at], *bad, *BASE[at:]])


def workbook(sheets: list[tuple[str, list[list[object]]]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for values in rows:
            sheet.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def damaged_workbook() -> bytes:
    """A valid zip whose worksheet XML is cut in half."""
    original = zipfile.ZipFile(io.BytesIO(workbook([("Peaks", [HEADER, *BASE])])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as damaged:
        for item in original.infolist():
            content = original.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                content = content[: len(content) // 2]
            damaged.writestr(item, content)
    return buffer.getvalue()


def random_bytes_with_nuls() -> bytes:
    data = bytearray(np.random.default_rng(20240501).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    data[:2] = b"\x13\x37"  # not a byte-order mark, zip or OLE signature
    data[100] = 0
    return bytes(data)


# --- expected outcomes ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Structural:
    """The whole file is rejected; the message holds every keyword (case-insensitive)."""

    keywords: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RowProblems:
    """(row, column, offending value, reason keyword) for every problem, and the file's data rows."""

    issues: tuple[tuple[int, str, str, str], ...]
    n_rows: int = len(BASE) + 1


@dataclasses.dataclass(frozen=True)
class Completes:
    """The run finishes; `check` inspects the result."""

    check: Callable[[AnalysisResult], None]
    n_rows: int = len(BASE)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    expect: Structural | RowProblems | Completes
    max_bytes: int | None = 200 * 1024 * 1024
    max_rows: int = 1_000_000


def no_model(*keywords: str) -> Callable[[AnalysisResult], None]:
    def check(result: AnalysisResult) -> None:
        assert set(result.rows["status"]) == {"unassessed"}
        assert result.summary["model"].startswith("not fitted")
        for keyword in keywords:
            assert keyword in result.summary["model"]
        assert result.rows["reason"].str.startswith("no RT model").all()
        assert result.rows["predicted_rt"].isna().all()
        assert result.models[0]["status"] == "not fitted"

    return check


def extra_column_kept(column: str, values: list[str]) -> Callable[[AnalysisResult], None]:
    def check(result: AnalysisResult) -> None:
        assert result.issues == []
        assert result.rows[column].tolist() == values
        assert "invalid" not in set(result.rows["status"])
        assert result.summary["model"] == "fitted"

    return check


def good(name="GD1(36:1;O2)", rt="7.2", volume="1000", log_p="1.0", anchor="F") -> list[str]:
    return [name, rt, volume, log_p, anchor]


HYPERLINK = '=HYPERLINK("http://example.org","GD1(36:1;O2)")'
FORMULAS = ["=1+1", HYPERLINK, "+OAc", "-2", "@SUM(A1)"]

CASES = [
    # --- structural problems: the whole file is rejected ---------------------------------------
    Case("missing-column", to_csv([r[:4] for r in BASE], HEADER[:4]), Structural(("missing", "Anchor"))),
    Case(
        "missing-two-columns",
        to_csv([[r[0], r[3], r[4]] for r in BASE], ["Name", "Log P", "Anchor"]),
        Structural(("missing required columns", "RT", "Volume")),
    ),
    Case("empty-file", b"", Structural(("empty",))),
    Case("whitespace-only", b"  \n\t\n \r\n   ", Structural(("empty",))),
    Case("only-delimiters-and-quotes", b',,,,\n;;;\n""\n', Structural(("empty",))),
    Case("header-only", to_csv([]), Structural(("header", "no data rows"))),
    Case("header-and-blank-lines", to_csv([]) + b"\n\n,,,,\n  \n", Structural(("no data rows",))),
    Case("binary-garbage-with-nuls", random_bytes_with_nuls(), Structural(("binary",))),
    Case("png-image", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), Structural(("binary",))),
    Case("utf16-without-bom", to_csv(BASE).decode().encode("utf-16-le"), Structural(("binary",))),
    Case(
        "latin1-micro-sign",
        to_csv([*BASE[:2], [BASE[2][0] + " 5µM", *BASE[2][1:]]]).decode().encode("latin-1"),
        Structural(("not UTF-8", "0xb5")),
    ),
    Case("pipe-delimited", to_csv(BASE, delimiter="|"), Structural(("missing", "single column"))),
    Case(
        "two-columns-meaning-rt",
        to_csv([[*r, r[1]] for r in BASE], [*HEADER, "Retention time"]),
        Structural(("'RT'", "'Retention time'", "both mean RT")),
    ),
    Case(
        "two-extra-columns-with-one-name",
        to_csv([[*r, "a", "b"] for r in BASE], [*HEADER, "Note", "Note"]),
        Structural(("duplicate column name", "Note")),
    ),
    Case("larger-than-upload-limit", to_csv(BASE), Structural(("larger than", "100 bytes", "limit")), max_bytes=100),
    Case("more-rows-than-max-rows", to_csv(BASE), Structural(("more than 10 data rows", "max_rows")), max_rows=10),
    Case("legacy-xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), Structural((".xls", "not supported"))),
    Case("corrupt-xlsx", b"PK\x03\x04" + bytes(range(256)) * 4, Structural(("Excel workbook", ".xlsx"))),
    Case("xlsx-with-damaged-sheet", damaged_workbook(), Structural(("sheet 'Peaks'", "Excel workbook"))),
    Case(
        "xlsx-without-a-data-sheet",
        workbook([("Title", [["Report"]]), ("Peaks", [HEADER[:4], *[r[:4] for r in BASE]])]),
        Structural(("no sheet", "'Peaks' lacks Anchor")),
    ),
    Case("xlsx-with-empty-sheets", workbook([("One", []), ("Two", [])]), Structural(("workbook is empty",))),
    Case(
        "quote-never-closed",
        to_csv(BASE[:2]) + b'"GD1(36:1;O2),7.1,100,1,T\n' + to_csv(BASE[2:]).split(b"\n", 1)[1],
        Structural(("quote", "never closed", "line 4")),
    ),
    Case(
        "stray-quotes-merge-rows",
        to_csv(BASE[:2]) + b'"GD1(36:1;O2),7.1,100,1,T\nGD1(34:1;O2)",7.0,100,1,T\n',
        Structural(("row 3", "Name", "several lines", "quote")),
    ),
    # --- row problems: reported per row --------------------------------------------------------
    Case("text-in-rt", with_bad_rows(good(rt="abc")), RowProblems(((4, "RT", "abc", "not a number"),))),
    Case("nan-rt", with_bad_rows(good(rt="NaN")), RowProblems(((4, "RT", "NaN", "finite"),))),
    Case("inf-volume", with_bad_rows(good(volume="inf")), RowProblems(((4, "Volume", "inf", "finite"),))),
    Case("minus-inf-log-p", with_bad_rows(good(log_p="-inf")), RowProblems(((4, "Log P", "-inf", "finite"),))),
    Case("overflowing-rt", with_bad_rows(good(rt="1e400")), RowProblems(((4, "RT", "1e400", "finite"),))),
    Case("negative-rt", with_bad_rows(good(rt="-1.5")), RowProblems(((4, "RT", "-1.5", "> 0"),))),
    Case("zero-rt", with_bad_rows(good(rt="0")), RowProblems(((4, "RT", "0", "> 0"),))),
    Case("rt-above-300", with_bad_rows(good(rt="300.01")), RowProblems(((4, "RT", "300.01", "≤ 300"),))),
    Case("zero-volume", with_bad_rows(good(volume="0")), RowProblems(((4, "Volume", "0", "greater than 0"),))),
    Case(
        "negative-volume", with_bad_rows(good(volume="-250")), RowProblems(((4, "Volume", "-250", "greater than 0"),))
    ),
    Case("log-p-text", with_bad_rows(good(log_p="n/a")), RowProblems(((4, "Log P", "n/a", "not a number"),))),
    Case(
        "decimal-comma-in-comma-csv",
        with_bad_rows(good(rt="7,2")),
        RowProblems(((4, "RT", "7,2", "decimal separator"),)),
    ),
    Case("unknown-anchor-value", with_bad_rows(good(anchor="maybe")), RowProblems(((4, "Anchor", "maybe", "T/F"),))),
    Case("empty-anchor", with_bad_rows(good(anchor="")), RowProblems(((4, "Anchor", "", "missing value"),))),
    Case("empty-name", with_bad_rows(good(name="")), RowProblems(((4, "Name", "", "missing value"),))),
    Case(
        "hyperlink-formula-as-name",
        with_bad_rows(good(name=HYPERLINK)),
        RowProblems(((4, "Name", HYPERLINK, "parentheses"),)),
    ),
    Case(
        "greek-letter-in-name",
        with_bad_rows(good(name="GΜ1(36:1;O2)")),
        RowProblems(((4, "Name", "GΜ1(36:1;O2)", "U+039C GREEK CAPITAL LETTER MU"),)),
    ),
    Case(
        "full-width-name",
        with_bad_rows(good(name="ＧＤ１(36:1;O2)")),
        RowProblems(((4, "Name", "ＧＤ１(36:1;O2)", "FULLWIDTH LATIN CAPITAL LETTER G"),)),
    ),
    Case(
        "full-width-digits-in-chain",
        with_bad_rows(good(name="GD1(３６:1;O2)")),
        RowProblems(((4, "Name", "GD1(３６:1;O2)", "FULLWIDTH DIGIT THREE"),)),
    ),
    Case(
        "superscript-digit-in-head",
        with_bad_rows(good(name="GD²(36:1;O2)")),
        RowProblems(((4, "Name", "GD²(36:1;O2)", "SUPERSCRIPT TWO"),)),
    ),
    Case(
        "unknown-sialic-letter",
        with_bad_rows(good(name="GX1(36:1;O2)")),
        RowProblems(((4, "Name", "GX1(36:1;O2)", "unknown sialic letter 'X'"),)),
    ),
    Case(
        "bad-chain",
        with_bad_rows(good(name="GD1(36-1;O2)")),
        RowProblems(((4, "Name", "GD1(36-1;O2)", "ceramide '36-1;O2'"),)),
    ),
    Case("name-without-chain", with_bad_rows(good(name="GD1")), RowProblems(((4, "Name", "GD1", "missing ceramide"),))),
    Case(
        "more-cells-than-header",
        with_bad_rows([*good(), "stray"]),
        RowProblems(((4, "column 6", "stray", "6 cells but the header has 5"),)),
    ),
    Case(
        "stray-cell-after-empty-overflow",
        with_bad_rows([*good(), "", "stray"]),
        RowProblems(((4, "column 7", "stray", "7 cells but the header has 5"),)),
    ),
    Case(
        "digit-separator-in-number",
        with_bad_rows(good(volume="1_000")),
        RowProblems(((4, "Volume", "1_000", "not a number"),)),
    ),
    Case(
        "arabic-indic-digits-in-rt",
        with_bad_rows(good(rt="٧٫٥")),
        RowProblems(((4, "RT", "٧٫٥", "not a number"),)),
    ),
    Case(
        "truncated-row",
        with_bad_rows(good()[:2]),
        RowProblems(
            (
                (4, "Volume", "", "missing value"),
                (4, "Log P", "", "missing value"),
                (4, "Anchor", "", "missing value"),
            )
        ),
    ),
    Case(
        "several-problems-in-one-row",
        with_bad_rows(["GD1(36:1;O2)", "soon", "-1", "x", "perhaps"]),
        RowProblems(
            (
                (4, "RT", "soon", "not a number"),
                (4, "Volume", "-1", "greater than 0"),
                (4, "Log P", "x", "not a number"),
                (4, "Anchor", "perhaps", "T/F"),
            )
        ),
    ),
    Case(
        "bad-first-and-last-rows",
        to_csv([good(rt="-3"), *BASE, good(anchor="2")]),
        RowProblems(((1, "RT", "-3", "> 0"), (22, "Anchor", "2", "T/F")), n_rows=len(BASE) + 2),
    ),
    # --- well-formed files that cannot support a model -----------------------------------------
    Case("no-anchors", to_csv([[*r[:4], "F"] for r in BASE]), Completes(no_model("0 usable anchors"))),
    Case(
        "one-anchor",
        to_csv([BASE[0], *[[*r[:4], "F"] for r in BASE[1:]]]),
        Completes(no_model("1 usable anchor")),
    ),
    Case(
        "anchors-of-identical-composition",
        to_csv(
            [["GD1(36:1;O2)", f"{7.1 + 0.001 * i:.3f}", "1000", "1.0", "T"] for i in range(6)]
            + [[*r[:4], "F"] for r in BASE[:4]]
        ),
        Completes(no_model("same composition"), n_rows=10),
    ),
    # --- formula-looking cells outside Name are data ------------------------------------------
    Case(
        "formulas-in-an-extra-column",
        to_csv([[*r, FORMULAS[i % 5]] for i, r in enumerate(BASE)], [*HEADER, "Link"]),
        Completes(extra_column_kept("Link", [FORMULAS[i % 5] for i in range(len(BASE))])),
    ),
]


def attempt(action: Callable[[], object]) -> object:
    """The action's value, or the documented error it raised; anything else fails the test."""
    try:
        return action()
    except DOCUMENTED_ERRORS as error:
        return error
    except Exception as error:  # the point of the test: nothing else may escape
        pytest.fail(f"undocumented {type(error).__name__} escaped: {error}")


def load(case: Case):
    return attempt(lambda: load_table(case.data, params=Parameters(max_rows=case.max_rows), max_bytes=case.max_bytes))


def run(case: Case, policy: str):
    params = Parameters(max_rows=case.max_rows, on_invalid_rows=policy)
    return attempt(lambda: run_file(case.data, filename=f"{case.id}.csv", params=params, max_bytes=case.max_bytes))


@pytest.fixture(scope="module")
def base_result() -> AnalysisResult:
    result = run_file(to_csv(BASE))
    assert result.summary["model"] == "fitted"
    assert result.issues == []
    return result


def test_the_table_has_enough_distinct_files():
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)
    assert len({(case.data, case.max_bytes, case.max_rows) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_file(case: Case, base_result: AnalysisResult):
    if isinstance(case.expect, Structural):
        check_structural(case, case.expect)
    elif isinstance(case.expect, RowProblems):
        check_row_problems(case, case.expect, base_result)
    else:
        check_completes(case, case.expect)


def check_structural(case: Case, expect: Structural) -> None:
    outcomes = [load(case), run(case, "reject"), run(case, "skip")]
    for outcome in outcomes:
        assert isinstance(outcome, TableError), f"expected a TableError, got {outcome!r}"
        message = outcome.message
        assert message == str(outcome)
        assert "\n" not in message and "Traceback" not in message
        for keyword in expect.keywords:
            assert keyword.lower() in message.lower(), f"{keyword!r} not in {message!r}"
    assert len({outcome.message for outcome in outcomes}) == 1


def check_row_problems(case: Case, expect: RowProblems, base_result: AnalysisResult) -> None:
    table = load(case)
    assert not isinstance(table, DOCUMENTED_ERRORS), f"expected row issues, got {table!r}"
    issues = table.issues
    assert [(i.row, i.column) for i in issues] == [(row, column) for row, column, _, _ in expect.issues]
    for issue, (_, _, value, keyword) in zip(issues, expect.issues, strict=True):
        assert issue.value == value
        assert keyword in issue.reason, f"{keyword!r} not in {issue.reason!r}"
    bad_rows = sorted({row for row, _, _, _ in expect.issues})
    all_rows = list(range(1, expect.n_rows + 1))
    assert table.frame["row"].tolist() == all_rows
    assert table.frame.loc[~table.frame["valid"], "row"].tolist() == bad_rows

    # reject: nothing is analysed, and the error carries every problem
    rejected = run(case, "reject")
    assert isinstance(rejected, InvalidRowsError), f"expected InvalidRowsError, got {rejected!r}"
    assert rejected.issues == issues
    assert rejected.n_rows == expect.n_rows
    assert f"{len(bad_rows)} of {expect.n_rows} rows are invalid" in rejected.message
    assert "on_invalid_rows=skip" in rejected.message

    # skip: every row comes back; the bad ones as invalid, the others analysed as without them
    result = run(case, "skip")
    assert isinstance(result, AnalysisResult), f"expected a result, got {result!r}"
    rows = result.rows
    assert rows["row"].tolist() == all_rows  # nothing dropped, nothing repeated
    assert {i.row for i in result.issues} | set(rows["row"]) == set(all_rows)
    assert result.issues == issues
    invalid = rows[rows["row"].isin(bad_rows)]
    assert (invalid["status"] == "invalid").all()
    for _, row in invalid.iterrows():
        for issue in (i for i in issues if i.row == row["row"]):
            assert issue.column in row["reason"] and issue.reason in row["reason"]
        assert math.isnan(row["predicted_rt"])
    assert result.summary["counts"]["invalid"] == len(bad_rows)
    analysed = rows[~rows["row"].isin(bad_rows)].reset_index(drop=True)
    expected = base_result.rows
    assert len(analysed) == len(expected)
    assert analysed["name"].tolist() == expected["name"].tolist()
    assert analysed["status"].tolist() == expected["status"].tolist()
    assert np.allclose(analysed["predicted_rt"], expected["predicted_rt"], equal_nan=True)
    assert np.allclose(analysed["pi_high"], expected["pi_high"], equal_nan=True)
    assert result.summary["model"] == "fitted"


def check_completes(case: Case, expect: Completes) -> None:
    table = load(case)
    assert not isinstance(table, DOCUMENTED_ERRORS), f"expected a table, got {table!r}"
    for policy in ("reject", "skip"):
        result = run(case, policy)
        assert isinstance(result, AnalysisResult), f"expected a result, got {result!r}"
        assert result.rows["row"].tolist() == list(range(1, expect.n_rows + 1))
        assert result.rows["reason"].str.len().min() > 0
        expect.check(result)


# --- the same promises through a file path -------------------------------------------------------


def test_oversize_file_on_disk_is_rejected_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(to_csv(BASE * 20))
    outcome = attempt(lambda: load_table(path, max_bytes=2048))
    assert isinstance(outcome, TableError)
    assert "2 KB" in outcome.message and "limit" in outcome.message


def test_missing_file_on_disk(tmp_path):
    outcome = attempt(lambda: run_file(tmp_path / "nowhere.csv"))
    assert isinstance(outcome, TableError)
    assert "cannot read" in outcome.message and "nowhere.csv" in outcome.message


def test_path_that_cannot_exist():
    outcome = attempt(lambda: load_table("peaks\x00.csv"))
    assert isinstance(outcome, TableError)
    assert "cannot read" in outcome.message


def test_rt_limits_are_inclusive_at_300_minutes():
    table = load_table(to_csv([good(rt="300"), good(rt="0.001"), good(rt="300.0001")]))
    assert [(i.row, i.column) for i in table.issues] == [(3, "RT")]


def test_invalid_anchor_is_unknown_not_false_in_the_output():
    result = run_file(with_bad_rows(good(anchor="maybe")), params=SKIP)
    assert result.rows.loc[result.rows["row"] == 4, "anchor"].isna().all()
    assert result.rows.loc[result.rows["row"] != 4, "anchor"].notna().all()


def test_utf8_bom_alone_is_an_empty_file():
    outcome = attempt(lambda: load_table(codecs.BOM_UTF8))
    assert isinstance(outcome, TableError)
    assert "empty" in outcome.message
