"""Exports of MS-DIAL, MZmine, LipidSearch and Skyline read to the same peaks as the native table.

The fixtures (tests/layout_fixtures.py) write the real sample's peaks in each tool's layout. The
native table without its Log P column is the reference: every layout must give the same peaks
and the same status for every peak. Volumes may differ only by what the layout's number format
or the mean of the sample columns allows, and the tolerance below says which.
"""

from __future__ import annotations

import pytest

from analysis.anchor_rule import AnchorRule
from analysis.errors import TableError
from analysis.layouts import strip_adduct
from analysis.params import Parameters
from analysis.pipeline import load_table, run_file
from tests import layout_fixtures as fixtures

# Why a layout's volume may differ from the native Volume, as a relative tolerance:
# MZmine writes intensities as 0.###E0 (four significant digits: at most half a unit in the
# fourth, 5e-4 relative); MS-DIAL's mean of round(0.9 v), v, round(1.1 v) is off by at most 1/3
# of an area unit, relative 1/(3 v) for the smallest volume v of the sample.
SMALLEST_VOLUME = float(fixtures.sample_peaks()["Volume"].min())
VOLUME_TOLERANCE = {"mzmine_modular": 5e-4, "msdial_alignment": 1 / (3 * SMALLEST_VOLUME)}
# What each fixture adds besides the sample's peaks, and the reason the reader gives for it.
SKIPPED = {
    "msdial_alignment": {"not annotated": 1, "not a ganglioside (PC)": 1, "not a ganglioside (Cer)": 1},
    "msdial_peaklist": {"not annotated": 1, "not a ganglioside (PC)": 1, "not a ganglioside (Cer)": 1},
    "mzmine_modular": {"not annotated": 1, "not a ganglioside (PC)": 1},
    "mzmine_legacy": {"not annotated": 1},
    "lipidsearch4": {"rejected in LipidSearch (Rej.)": 1},
    "lipidsearch5": {},
    "skyline_long": {},
    "skyline_pivoted": {},
}
RECOGNISED = {"lipidsearch4": "lipidsearch", "lipidsearch5": "lipidsearch"}


@pytest.fixture(scope="module")
def native():
    result = run_file(fixtures.without_log_p(), filename="native.csv", params=Parameters())
    return result.rows.assign(rt_key=result.rows["rt"].round(4)).set_index(["canonical_name", "rt_key"])


@pytest.mark.parametrize("layout", list(fixtures.LAYOUTS))
def test_every_layout_reads_to_the_sample_peaks_with_the_same_statuses(layout, native):
    writer, filename, mapping = fixtures.LAYOUTS[layout]
    result = run_file(writer(), filename=filename, params=Parameters(), mapping=mapping)
    rows = result.rows.assign(rt_key=result.rows["rt"].round(4)).set_index(["canonical_name", "rt_key"])
    assert sorted(rows.index) == sorted(native.index)  # the same peaks, none lost, none added
    rows = rows.loc[native.index]
    assert list(rows["anchor"]) == list(native["anchor"])
    assert list(rows["status"]) == list(native["status"])
    relative = ((rows["volume"] - native["volume"]).abs() / native["volume"]).max()
    assert relative <= VOLUME_TOLERANCE.get(layout, 0.0)
    reading = result.provenance["input"]["reading"]
    assert reading["layout"] == RECOGNISED.get(layout, layout)
    assert {reason: found["count"] for reason, found in reading["skipped"].items()} == SKIPPED[layout]
    assert result.summary["n_rows_skipped"] == sum(SKIPPED[layout].values())
    assert result.summary["log_p_given"] is False


def test_the_native_sample_gives_the_same_verdicts_with_and_without_log_p(native):
    with_log_p = run_file(fixtures.SAMPLE, params=Parameters()).rows
    assert list(with_log_p["status"]) == list(run_file(fixtures.without_log_p(), filename="n.csv").rows["status"])
    assert with_log_p["log_p"].notna().all()


def test_the_ms_dial_mean_leaves_out_blanks_and_a_named_sample_is_taken_as_it_is():
    peaks = fixtures.sample_peaks()
    table = load_table(fixtures.msdial_alignment(), filename="a.txt")
    assert table.reading["samples"] == [*fixtures.SAMPLES, "Blank_1"]
    assert table.reading["sample"] == "mean"
    assert any("Blank files left out" in notice for notice in table.notices)
    one = load_table(fixtures.msdial_alignment(), filename="a.txt", mapping={"sample": "Brain_1"})
    expected = [round(v * 0.9) for v in peaks["Volume"]]
    assert list(one.frame["volume"]) == expected
    assert one.reading["columns"]["Volume"] == "sample Brain_1 ('Brain_1')"
    assert "Alignment ID" in one.extra_columns and "Average Brain" in one.extra_columns  # class stats renamed


def test_ms_dial_marks_are_read_unannotated_rows_skipped_and_w_o_ms2_never_anchors():
    table = load_table(fixtures.msdial_alignment(), filename="a.txt")
    written = table.frame["name"]
    demoted = written.str.startswith("w/o MS2: ")
    assert demoted.any() and not table.frame.loc[demoted, "anchor"].any()
    assert (table.frame["molecular_species"] != "").any()
    rows = {reason: found["rows"] for reason, found in table.reading["skipped"].items()}
    assert rows["not annotated"] == [len(fixtures.sample_peaks()) + 1]  # the first row after the sample's peaks


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text.replace("Average Rt(min)", "Rt average"), "nothing the analysis can use for RT"),
        (lambda text: text.replace("MS/MS matched", "MSMS flag"), "nothing the analysis can use for Anchor"),
    ],
)
def test_a_recognised_layout_without_a_field_names_it_and_what_to_map(change, message):
    data = change(fixtures.msdial_alignment().decode()).encode()
    with pytest.raises(TableError, match=message) as caught:
        load_table(data, filename="a.txt")
    assert "MS-DIAL alignment export" in caught.value.message


def test_a_mapping_to_a_text_column_or_an_empty_sample_is_refused_precisely():
    with pytest.raises(TableError, match=r"RT is read from 'Ontology', which holds text"):
        load_table(fixtures.msdial_alignment(), filename="a.txt", mapping={"rt": "Ontology"})
    empty = fixtures.msdial_alignment().decode().splitlines()
    # Brain_3 is the third sample column, just after the 35 metadata columns: blank it in every data row.
    column = len(fixtures.MSDIAL5_METADATA) + 2
    empty = [line if number < 5 else _blank_cell(line, column) for number, line in enumerate(empty)]
    with pytest.raises(TableError, match=r"sample 'Brain_3': its column 'Brain_3' has no values"):
        load_table("\r\n".join(empty).encode(), filename="a.txt", mapping={"sample": "Brain_3"})
    with pytest.raises(TableError, match=r"sample 'Brain_9' is not a sample of this table \(samples: Brain_1"):
        load_table(fixtures.msdial_alignment(), filename="a.txt", mapping={"sample": "Brain_9"})


def _blank_cell(line: str, column: int) -> str:
    cells = line.split("\t")
    cells[column] = ""
    return "\t".join(cells)


def test_mzmine_2_needs_an_anchor_column_and_says_so():
    with pytest.raises(TableError, match=r"recognised as MZmine 2 legacy CSV.*Anchor"):
        load_table(fixtures.mzmine_legacy(), filename="quant_mzmine.csv")


def test_anchor_rules_read_flags_thresholds_and_grades():
    assert AnchorRule.parse(">= 80").decide("80.000") == "T"
    assert AnchorRule.parse("> 0").decide("0") == "F"
    assert AnchorRule.parse(">= 1").decide("") == "F"  # no score: not confirmed
    assert AnchorRule.parse(">= 1").decide("many") is None  # neither a number nor blank: a row problem
    assert AnchorRule.parse("in A,B").decide("b") == "T"
    assert AnchorRule.parse("A, B").decide("C") == "F"
    assert AnchorRule.parse("yes/no").decide("True") == "T"
    with pytest.raises(TableError, match="anchor rule '>= lots'"):
        AnchorRule.parse(">= lots")


def test_an_anchor_rule_on_a_plain_table_turns_a_score_into_anchors():
    data = b"Name,RT,Volume,Score\nGM3(36:1;O2),9.1,100,0.95\nGM3(38:1;O2),10.1,100,0.2\nGM3(34:1;O2),8.1,100,n/a\n"
    table = load_table(data, filename="t.csv", mapping={"anchor": "Score", "anchor_rule": ">= 0.8"})
    assert list(table.frame["anchor"]) == [True, False, False]
    assert table.reading["columns"]["Anchor"] == "'Score' ≥ 0.8"
    bad = b"Name,RT,Volume,Score\nGM3(36:1;O2),9.1,100,high\n"
    table = load_table(
        bad,
        filename="t.csv",
        mapping={"anchor": "Score", "anchor_rule": ">= 0.8"},
        params=Parameters(on_invalid_rows="skip"),
    )
    (issue,) = table.issues
    assert issue.column == "Anchor" and "threshold" in issue.reason


def test_ms_dial_5_prefixes_and_lipidsearch_ions_and_chains():
    data = (
        b"PeakID\tTitle\tRT (min)\tArea\tMS/MS matched\tS/N\tS/N\r\n"
        b"1\tno MS2: GM3 36:1;O2\t9.1\t100\tTrue\t5\t5\r\n"
        b"2\tlow score: GM3 38:1;O2\t10.1\t100\tTrue\t5\t5\r\n"
        b"3\tGM3 34:1;O2\t8.1\t100\tTrue\t5\t5\r\n"
    )
    table = load_table(data, filename="peaks.txt")
    assert list(table.frame["anchor"]) == [False, False, True]
    assert "S/N" in table.extra_columns and "S/N (2)" in table.extra_columns  # MS-DIAL 5 writes S/N twice
    assert any("'low score:'" in n for n in table.notices)
    assert strip_adduct("GM3(d18:1_18:0)-H") == "GM3(d18:1_18:0)"
    assert strip_adduct("GD1a(d18:1/18:0)-2H") == "GD1a(d18:1/18:0)"
    lipidsearch = (
        b"Rej\tID\tLipidID\tCharge\tCalcMz\tBaseRt\tClass\tOrgMeanArea[s1]\tGrade[s1-1]\n"
        b"false\t1\tGM3(d18:1_18:0)-H\t-1\t1179.7\t9.1\tGM3\t1000\tA\n"
        b"true\t2\tGM3(d18:1_20:0)-H\t-1\t1207.7\t10.1\tGM3\t1000\tA\n"
    )
    table = load_table(lipidsearch, filename="ls52.csv")
    assert list(table.frame["canonical_name"]) == ["GM3(36:1;O2)"]
    assert table.frame["anchor"].all()
    assert "rejected in LipidSearch (Rej.)" in table.reading["skipped"]


def test_a_mapped_volume_column_leaves_the_per_sample_retention_times_averaged():
    table = load_table(fixtures.lipidsearch4(), filename="LIPIDS_NEG.txt", mapping={"volume": "Area[c-1]"})
    peaks = fixtures.sample_peaks()
    assert list(table.frame["rt"]) == list(peaks["RT"])  # both samples' Rt, averaged
    assert table.reading["columns"]["Volume"] == "Area[c-1]"
    assert table.reading["columns"]["RT"].startswith("mean of 2 samples")
