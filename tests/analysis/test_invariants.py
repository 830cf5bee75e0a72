"""Properties every analysis must have, whatever the input (science.md §5)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from analysis.export import to_csv_bytes, to_json_bytes
from analysis.pipeline import run_file
from analysis.synthetic import generate_extract

VERDICT_COLUMNS = ["status", "flags", "isomer_group"]


def frame_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


@pytest.fixture(scope="module")
def inputs(porcine_csv):
    return {
        "porcine": pd.read_csv(porcine_csv),
        "synthetic": generate_extract(500, seed=3).table,
    }


def verdicts(result) -> pd.DataFrame:
    """Per input line (identified by its original content), every verdict, in a canonical order."""
    rows = result.rows.copy()
    rows["flags"] = rows["flags"].map(lambda f: ",".join(sorted(f)))
    # fragment_of refers to a row number; compare the precursor's identity instead.
    identity = rows.set_index("row")[["name", "rt", "volume"]].astype(str).agg("|".join, axis=1)
    rows["precursor"] = rows["fragment_of"].map(lambda r: identity.get(r, "") if pd.notna(r) else "")
    rows["key"] = rows[["name", "rt", "volume"]].astype(str).agg("|".join, axis=1)
    return rows.sort_values(["key", "status", "flags"]).reset_index(drop=True)[
        ["key", *VERDICT_COLUMNS, "precursor", "predicted_rt"]
    ]


@pytest.mark.parametrize("which", ["porcine", "synthetic"])
@pytest.mark.parametrize("seed", [1, 2])
def test_shuffling_rows_changes_no_verdict(inputs, which, seed):
    table = inputs[which]
    original = verdicts(run_file(frame_bytes(table), filename="a.csv"))
    shuffled_table = table.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    shuffled = verdicts(run_file(frame_bytes(shuffled_table), filename="a.csv"))
    pd.testing.assert_frame_equal(original.drop(columns="predicted_rt"), shuffled.drop(columns="predicted_rt"))
    assert np.allclose(original["predicted_rt"], shuffled["predicted_rt"], atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("which", ["porcine", "synthetic"])
def test_same_input_gives_byte_identical_outputs(inputs, which):
    data = frame_bytes(inputs[which])
    first, second = run_file(data, filename="a.csv"), run_file(data, filename="a.csv")
    assert to_csv_bytes(first) == to_csv_bytes(second)

    def without_clock(result):
        document = json.loads(to_json_bytes(result))
        for key in ("started", "finished", "duration_seconds"):
            document["provenance"].pop(key)
        return json.dumps(document, sort_keys=True)

    assert without_clock(first) == without_clock(second)


@pytest.mark.parametrize("which", ["porcine", "synthetic"])
def test_scaling_all_volumes_changes_no_rt_verdict(inputs, which):
    table = inputs[which]
    scaled = table.assign(Volume=table["Volume"] * 10)
    before = run_file(frame_bytes(table), filename="a.csv").rows
    after = run_file(frame_bytes(scaled), filename="a.csv").rows
    for column in ("status", "predicted_rt", "pi_low", "pi_high", "q_value", "fragment_of", "series"):
        pd.testing.assert_series_equal(before[column], after[column])
    assert before["flags"].tolist() == after["flags"].tolist()
    assert np.allclose(after["merged_volume"], before["merged_volume"] * 10, equal_nan=True)
