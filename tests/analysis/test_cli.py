"""The command line. Most cases call `analysis.cli.main(argv)` in this process (what `python -m
analysis` runs, minus interpreter start-up); the smoke tests marked so run it as users do, in a
separate process, exit code and all."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis.cli import main
from analysis.result import STATUSES
from tests.conftest import REPO

EXIT_OK = 0
EXIT_INPUT_ERROR = 2


def run_cli(*args: object, in_subprocess: bool = False) -> subprocess.CompletedProcess:
    argv = [str(arg) for arg in args]
    if in_subprocess:
        return subprocess.run(
            [sys.executable, "-m", "analysis", *argv], cwd=REPO, capture_output=True, text=True, timeout=120
        )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(REPO), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def assert_input_error(process: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2 with a message on stderr that names the problem, nothing on stdout, no traceback."""
    assert process.returncode == EXIT_INPUT_ERROR, process.stderr
    assert "Traceback" not in process.stderr
    assert process.stdout == ""
    message = process.stderr.strip()
    assert message
    for fragment in fragments:
        assert fragment in message, message
    return message


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sample_rows(porcine_csv) -> tuple[list[str], list[list[str]]]:
    with porcine_csv.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.reader(handle))
    return records[0], records[1:]


@pytest.fixture
def one_bad_row(tmp_path, sample_rows) -> tuple[Path, int]:
    """The first 30 sample rows with row 4's RT replaced by text; returns the file and that row."""
    header, rows = sample_rows
    rows = [list(row) for row in rows[:30]]
    bad = 4
    rows[bad - 1][header.index("RT")] = "soon"
    return write_rows(tmp_path / "one_bad_row.csv", header, rows), bad


# ---------------------------------------------------------------- run: success


@pytest.fixture(scope="module")
def sample_run(porcine_csv, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-run")
    outputs = {suffix: folder / f"result.{suffix}" for suffix in ("csv", "json", "xlsx")}
    process = run_cli(
        "run", porcine_csv, *[arg for path in outputs.values() for arg in ("--out", path)], in_subprocess=True
    )
    return process, outputs


def test_run_writes_every_output_and_prints_a_summary(sample_run, porcine_csv):
    process, outputs = sample_run
    assert process.returncode == EXIT_OK, process.stderr
    assert "Traceback" not in process.stderr
    n_rows = len(pd.read_csv(porcine_csv))

    document = json.loads(outputs["json"].read_text(encoding="utf-8"))
    counts = document["summary"]["counts"]
    assert sum(counts.values()) == n_rows
    assert len(pd.read_csv(outputs["csv"])) == n_rows
    book = openpyxl.load_workbook(outputs["xlsx"], read_only=True)
    assert book["rows"].max_row == n_rows + 1
    book.close()

    summary = process.stdout
    assert porcine_csv.name in summary
    assert f"{n_rows} rows" in summary
    # The flattering interpolation figure never appears without the honest ones beside it.
    metrics = document["metrics"]
    for key in ("loo_rmsep", "lopo_rmsep", "lohgo_rmsep", "loo_rmsep_all_anchors"):
        assert f"{metrics[key]:.3f} min" in summary
    assert f"{document['summary']['identity_outliers']} identities" in summary
    for status in STATUSES:
        assert f"{status} {counts[status]}" in summary
    for path in outputs.values():
        assert f"wrote {path}" in summary


def test_run_outputs_agree_with_each_other(sample_run):
    _, outputs = sample_run
    document = json.loads(outputs["json"].read_text(encoding="utf-8"))
    table = pd.read_csv(outputs["csv"])
    assert table["row"].tolist() == [record["row"] for record in document["rows"]]
    assert table["status"].tolist() == [record["status"] for record in document["rows"]]


def test_set_changes_parameters_and_quiet_prints_nothing(tiny_csv, tmp_path):
    out = tmp_path / "tiny.json"
    process = run_cli("run", tiny_csv, "--out", out, "--set", "alpha=0.01", "--set", " min_anchors = 3", "--quiet")
    assert process.returncode == EXIT_OK, process.stderr
    assert process.stdout == ""
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["summary"]["n_rows"] == len(pd.read_csv(tiny_csv))
    assert document["parameters"]["alpha"] == 0.01
    assert document["parameters"]["min_anchors"] == 3


def test_summary_says_n_a_for_a_metric_that_cannot_be_computed(tmp_path, sample_rows):
    # With a single head group there is no other group to predict it from.
    header, rows = sample_rows
    heads = [row[0].split("(")[0] for row in rows]
    single = [row for row, head in zip(rows, heads, strict=True) if head == heads[0]]
    path = write_rows(tmp_path / "one_head.csv", header, single)
    process = run_cli("run", path)
    assert process.returncode == EXIT_OK, process.stderr
    assert "model: fitted" in process.stdout
    assert "leave-one-head-group-out n/a" in process.stdout
    assert "nan" not in process.stdout


# ---------------------------------------------------------------- run: input errors


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.csv"
    assert_input_error(run_cli("run", missing), str(missing))


def test_folder_as_input(tmp_path):
    assert_input_error(run_cli("run", tmp_path), str(tmp_path))


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("foo=1", ["unknown parameter", "'foo'"]),
        ("alpha=2", ["alpha", "outside the allowed range"]),
        ("min_anchors=abc", ["min_anchors", "'abc'"]),
        ("min_anchors=2.5", ["min_anchors", "whole number"]),
        ("alpha", ["NAME=VALUE", "'alpha'"]),
        ("=0.1", ["NAME=VALUE"]),
    ],
)
def test_bad_parameter(tiny_csv, tmp_path, setting, names):
    out = tmp_path / "result.csv"
    message = assert_input_error(run_cli("run", tiny_csv, "--set", setting, "--out", out), *names)
    assert len(message.splitlines()) == 1
    assert not out.exists()


def test_unsupported_output_extension(tiny_csv, tmp_path):
    out = tmp_path / "result.txt"
    message = assert_input_error(run_cli("run", tiny_csv, "--out", out), "result.txt", ".csv, .xlsx or .json")
    assert len(message.splitlines()) == 1
    assert not out.exists()


def test_bad_output_is_refused_before_anything_is_written(tiny_csv, tmp_path):
    good = tmp_path / "result.csv"
    missing_folder = tmp_path / "missing" / "result.json"
    assert_input_error(run_cli("run", tiny_csv, "--out", good, "--out", missing_folder), "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_output_over_the_input_is_refused(tmp_path, tiny_csv):
    copy = tmp_path / "peaks.csv"
    copy.write_bytes(tiny_csv.read_bytes())
    assert_input_error(run_cli("run", copy, "--out", copy), "input file")
    assert copy.read_bytes() == tiny_csv.read_bytes()


def test_invalid_rows_are_rejected_with_their_row_numbers(tmp_path, sample_rows):
    header, rows = sample_rows
    rows = [list(row) for row in rows[:30]]
    rows[2][header.index("Anchor")] = "maybe"
    rows[6][header.index("Name")] = "GX1(36:1;O2)"
    path = write_rows(tmp_path / "bad.csv", header, rows)
    out = tmp_path / "result.csv"
    process = run_cli("run", path, "--out", out)
    message = assert_input_error(process, "2 of 30 rows are invalid", "--on-invalid-rows skip")
    assert "row 3, Anchor = 'maybe'" in message
    assert "row 7, Name = 'GX1(36:1;O2)'" in message
    assert "unknown sialic letter 'X'" in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"Name,RT,Volume,Log P,Anchor\n", "no data rows"),
        (b"Name,RT,Log P,Anchor\nGM3(36:1;O2),10.6,1.5,T\n", "Volume"),
    ],
    ids=["empty file", "header only", "missing column"],
)
def test_structural_errors(tmp_path, content, problem):
    path = tmp_path / "table.csv"
    path.write_bytes(content)
    message = assert_input_error(run_cli("run", path), problem)
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["run", "peaks.csv", "--bogus"],
        ["run"],
        ["run", "peaks.csv", "--on-invalid-rows", "ignore"],
        ["frobnicate"],
        [],
        ["example"],
        ["example", "--out", "x.csv", "--rows", "many"],
    ],
    ids=["unknown option", "no input", "bad choice", "unknown command", "no command", "no out", "rows not a number"],
)
def test_bad_usage(args):
    process = run_cli(*args, in_subprocess=args == ["frobnicate"])
    assert process.returncode == EXIT_INPUT_ERROR
    assert "Traceback" not in process.stderr
    assert "error:" in process.stderr
    assert "usage:" in process.stderr


# ---------------------------------------------------------------- run: skipping invalid rows


def test_skip_analyses_the_valid_rows_and_reports_the_bad_one(one_bad_row, tmp_path):
    path, bad = one_bad_row
    out_json, out_csv = tmp_path / "result.json", tmp_path / "result.csv"
    process = run_cli("run", path, "--on-invalid-rows", "skip", "--out", out_json, "--out", out_csv)
    assert process.returncode == EXIT_OK, process.stderr
    assert "invalid 1" in process.stdout

    document = json.loads(out_json.read_text(encoding="utf-8"))
    rows = {record["row"]: record for record in document["rows"]}
    assert sorted(rows) == list(range(1, 31))
    assert rows[bad]["status"] == "invalid"
    assert "soon" in rows[bad]["reason"]
    assert [record["row"] for record in document["invalid_rows"]] == [bad]
    assert all(record["status"] != "invalid" for row, record in rows.items() if row != bad)
    assert document["parameters"]["on_invalid_rows"] == "skip"

    table = pd.read_csv(out_csv)
    assert table.loc[table["row"] == bad, "status"].tolist() == ["invalid"]


def test_skip_can_also_be_set_as_a_parameter(one_bad_row, tmp_path):
    path, bad = one_bad_row
    out = tmp_path / "result.json"
    process = run_cli("run", path, "--set", "on_invalid_rows=skip", "--out", out, "--quiet")
    assert process.returncode == EXIT_OK, process.stderr
    statuses = {record["row"]: record["status"] for record in json.loads(out.read_bytes())["rows"]}
    assert statuses[bad] == "invalid"


# ---------------------------------------------------------------- example


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    table, truth = folder / "example.csv", folder / "truth.csv"
    process = run_cli("example", "--out", table, "--rows", 120, "--seed", 3, "--truth", truth)
    assert process.returncode == EXIT_OK, process.stderr
    return table, truth, process


def test_example_writes_a_table_and_its_truth(example):
    table, truth, process = example
    peaks = pd.read_csv(table)
    assert list(peaks.columns) == ["Name", "RT", "Volume", "Log P", "Anchor"]
    assert len(peaks) == 120
    known = pd.read_csv(truth)
    assert known["row"].tolist() == list(range(1, 121))
    assert set(known["kind"]) <= {"genuine", "outlier", "fragment"}
    assert str(table) in process.stdout and str(truth) in process.stdout


def test_run_accepts_the_example(example, tmp_path):
    table, _, _ = example
    out = tmp_path / "result.json"
    process = run_cli("run", table, "--out", out)
    assert process.returncode == EXIT_OK, process.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["summary"]["n_rows"] == 120
    assert document["summary"]["counts"]["invalid"] == 0


def test_example_with_prefix_offsets_moves_retention_times_only(example, tmp_path):
    table, _, _ = example
    shifted = tmp_path / "shifted.csv"
    process = run_cli("example", "--out", shifted, "--rows", 120, "--seed", 3, "--prefix-offset-sd", 0.2)
    assert process.returncode == 0, process.stderr
    before, after = pd.read_csv(table), pd.read_csv(shifted)
    assert before["Name"].tolist() == after["Name"].tolist()
    assert not np.allclose(before["RT"], after["RT"])


def test_example_is_reproducible(example, tmp_path):
    table, truth, _ = example
    again, again_truth = tmp_path / "again.csv", tmp_path / "again_truth.csv"
    assert run_cli("example", "--out", again, "--rows", 120, "--seed", 3, "--truth", again_truth).returncode == 0
    assert again.read_bytes() == table.read_bytes()
    assert again_truth.read_bytes() == truth.read_bytes()

    other = tmp_path / "other.csv"
    assert run_cli("example", "--out", other, "--rows", 120, "--seed", 4).returncode == 0
    assert other.read_bytes() != table.read_bytes()
    assert len(pd.read_csv(io.BytesIO(other.read_bytes()))) == 120


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--rows", "5"], "--rows"),
        (["--out", "{tmp}/missing/example.csv"], "does not exist"),
        (["--truth", "{tmp}/missing/truth.csv"], "does not exist"),
        (["--prefix-offset-sd", "-0.1"], "--prefix-offset-sd"),
    ],
    ids=["too few rows", "missing folder", "missing truth folder", "negative prefix offset"],
)
def test_example_errors(tmp_path, args, problem):
    args = [arg.format(tmp=tmp_path) for arg in args]
    out = [] if "--out" in args else ["--out", tmp_path / "example.csv"]
    assert_input_error(run_cli("example", *out, *args), problem)
    assert list(tmp_path.iterdir()) == []


def test_map_takes_fields_from_columns_of_other_names_and_records_it(tmp_path, porcine_csv):
    lines = porcine_csv.read_text(encoding="utf-8-sig").splitlines()
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("\n".join(["Metabolite name,Average Rt(min),Area,Log P,MS/MS matched", *lines[1:]]) + "\n")
    plain, mapped = tmp_path / "plain.json", tmp_path / "mapped.json"
    assert run_cli("run", porcine_csv, "--out", plain, "--quiet").returncode == 0
    done = run_cli(
        "run", renamed, "--out", mapped, "--quiet",
        "--map", "Name=Metabolite name", "--map", "rt=Average Rt(min)", "--map", "Anchor=MS/MS matched",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    before, after = json.loads(plain.read_text()), json.loads(mapped.read_text())
    assert after["summary"]["counts"] == before["summary"]["counts"]
    assert [r["status"] for r in after["rows"]] == [r["status"] for r in before["rows"]]
    assert after["provenance"]["input"]["mapping"] == {
        "name": "Metabolite name",
        "rt": "Average Rt(min)",
        "anchor": "MS/MS matched",
    }
    assert "mapping" not in before["provenance"]["input"]


@pytest.mark.parametrize(
    "mapping, problem",
    [
        (["RT"], "--map expects FIELD=COLUMN"),
        (["Colour=Name"], "which is not a field"),
        (["RT=Retention"], "from column 'Retention', which the file does not have"),
        (["RT=RT", "RT=Area"], "gives RT twice"),
        (["RT=RT", "rt=RT"], "gives RT twice"),
    ],
)
def test_a_bad_map_is_an_input_error_naming_it(porcine_csv, mapping, problem):
    args = [item for pair in (("--map", m) for m in mapping) for item in pair]
    message = assert_input_error(run_cli("run", porcine_csv, *args), problem)
    assert len(message.splitlines()) == 1


def test_an_export_reads_with_a_preset_a_sample_and_an_anchor_rule(tmp_path):
    from tests import layout_fixtures

    export = tmp_path / "quant_mzmine.csv"
    export.write_bytes(layout_fixtures.mzmine_legacy())
    refused = run_cli("run", export)
    assert_input_error(refused, "recognised as MZmine 2 legacy CSV, but it has nothing the analysis can use for Anchor")
    preset = tmp_path / "mzmine2.json"
    preset.write_text(json.dumps({"Anchor": "row comment", "anchor_rule": "in MS2"}))
    out = tmp_path / "result.json"
    done = run_cli("run", export, "--preset", preset, "--sample", "Brain_2.mzML", "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    reading = json.loads(out.read_text())["provenance"]["input"]["reading"]
    assert reading["columns"]["Anchor"] == "'row comment' is MS2"
    assert reading["sample"] == "Brain_2.mzML" and reading["skipped"]["not annotated"]["count"] == 1
    assert_input_error(run_cli("run", export, "--preset", preset, "--anchor-rule", ">= x"), "anchor rule '>= x'")
    assert_input_error(run_cli("run", export, "--preset", tmp_path / "none.json"), "--preset: cannot read")
