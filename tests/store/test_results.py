"""Results are written all or nothing and read back exactly as the engine produced them."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from sqlalchemy import func, select

from analysis.export import to_csv_bytes, to_json_bytes, to_xlsx_bytes
from analysis.pipeline import run_file
from store import results as results_module
from store.jobs import claim_job, get_job
from store.models import JobResult, ResultRow
from store.results import load_result, read_rows, save_result
from tests.store.helpers import finished_job, new_job


def test_stored_result_reads_back_identically(database, porcine_csv):
    job, result = finished_job(database, porcine_csv.read_bytes(), "porcine.csv")
    loaded = load_result(database, job.id)
    assert to_csv_bytes(loaded) == to_csv_bytes(result)
    assert json.loads(to_json_bytes(loaded)) == json.loads(to_json_bytes(result))
    assert len(to_xlsx_bytes(loaded)) > 0


def test_extra_columns_and_odd_text_survive(database):
    content = (
        b"Name,RT,Volume,Log P,Anchor,Comment,Sample\n"
        b'GD1(36:1;O2),9.1,1000,1.5,T,"=HYPERLINK(""x"")",A\n'
        b'GD1(38:1;O2),10.6,900,2.6,T,"",B\n'
        b'GD1(40:1;O2),12.1,800,3.7,T,"line one\nline two","\\N"\n'
        b"XX,1,1,1,maybe,ok,C\n"
    )
    job = new_job(database, content, on_invalid_rows="skip")
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    from analysis.params import Parameters
    from analysis.pipeline import run_file

    result = run_file(content, filename="x.csv", params=Parameters(on_invalid_rows="skip"))
    save_result(database, job.id, result)
    loaded = load_result(database, job.id)
    assert loaded.rows["Comment"].tolist() == result.rows["Comment"].tolist()
    assert loaded.rows["Comment"].tolist()[1] == ""  # empty text is not NULL
    assert loaded.rows["Sample"].tolist() == ["A", "B", "\\N", "C"]
    assert to_csv_bytes(loaded) == to_csv_bytes(result)
    assert [i.to_dict() for i in loaded.issues] == [i.to_dict() for i in result.issues]


def test_rows_can_be_read_by_status(database, porcine_csv):
    job, result = finished_job(database, porcine_csv.read_bytes())
    outliers = read_rows(database, job.id, statuses=["outlier"])
    assert len(outliers) == result.summary["counts"]["outlier"] > 0
    assert set(outliers["status"]) == {"outlier"}


def test_a_crash_while_writing_leaves_no_rows(database, porcine_csv, monkeypatch):
    from analysis.pipeline import run_file

    job = new_job(database, porcine_csv.read_bytes())
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    result = run_file(porcine_csv)
    real_insert = results_module._insert_rows

    def insert_then_die(session, job_id, rows, extra):
        real_insert(session, job_id, rows.iloc[:100], extra)
        raise RuntimeError("power cut")

    monkeypatch.setattr(results_module, "_insert_rows", insert_then_die)
    with pytest.raises(RuntimeError, match="power cut"):
        save_result(database, job.id, result)
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(ResultRow)).scalar_one() == 0
        assert session.get(JobResult, job.id) is None
    assert get_job(database, job.id).status == "running"
    monkeypatch.undo()
    save_result(database, job.id, result)  # and it can be written afterwards
    assert get_job(database, job.id).status == "succeeded"


def test_rerun_replaces_results(database, porcine_csv):
    job, result = finished_job(database, porcine_csv.read_bytes())
    from sqlalchemy import update

    from store.jobs import TransitionError, fail_job, retry_job
    from store.models import Job

    with pytest.raises(TransitionError):
        fail_job(database, job.id, "cannot fail a succeeded job")

    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == job.id).values(status="failed"))
    retry_job(database, job.id)
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    save_result(database, job.id, result)
    with database.session() as session:
        count = session.execute(select(func.count()).select_from(ResultRow).where(ResultRow.job_id == job.id))
        assert count.scalar_one() == 323


def test_text_that_looks_like_copy_syntax_reads_back_as_written(database, porcine_csv):
    """Names and reasons go through COPY on PostgreSQL: tabs, newlines, backslashes and the text
    `\\N` (COPY's NULL) must come back as themselves, and a missing value as missing."""
    content = porcine_csv.read_bytes()
    result = run_file(content, filename="porcine.csv")
    tricky = ["a\tb", "two\nlines", "back\\slash", "\\N", "", 'quote " and , comma', "α-GD1"]
    rows = result.rows.copy()
    rows.loc[: len(tricky) - 1, "reason"] = tricky
    rows.loc[: len(tricky) - 1, "isomer_group"] = tricky
    rows.loc[len(tricky), "isomer_group"] = None
    job = new_job(database, content)
    claim_job(database, job.id, worker="w", stale_after_seconds=60)
    save_result(database, job.id, dataclasses.replace(result, rows=rows))
    stored = read_rows(database, job.id)
    assert stored["reason"].tolist()[: len(tricky)] == tricky
    assert stored["isomer_group"].tolist()[: len(tricky)] == tricky
    assert pd.isna(stored["isomer_group"].iloc[len(tricky)])
