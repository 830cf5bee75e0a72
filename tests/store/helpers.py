"""Shared steps for store tests: jobs in a given state, with real analysis results."""

from __future__ import annotations

import hashlib
from pathlib import Path

from analysis.params import Parameters
from analysis.pipeline import run_file
from store.db import Database
from store.jobs import claim_job, create_job, get_job
from store.results import save_result


def new_job(db: Database, content: bytes, filename: str = "peaks.csv", **params):
    parameters = Parameters.from_mapping(params).to_dict()
    event = create_job(
        db, filename=filename, content=content, sha256=hashlib.sha256(content).hexdigest(), parameters=parameters
    )
    return get_job(db, event.job_id)


def finished_job(db: Database, content: bytes, filename: str = "peaks.csv"):
    """A job that ran the real engine and succeeded; returns (job, result)."""
    job = new_job(db, content, filename)
    assert claim_job(db, job.id, worker="test", stale_after_seconds=60) is not None
    result = run_file(content, filename=filename)
    save_result(db, job.id, result)
    return job, result


def sample_bytes(path: Path) -> bytes:
    return path.read_bytes()
