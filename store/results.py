"""Write a finished analysis in one transaction, and read it back as an AnalysisResult."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Float, Integer, Text, cast, column, insert, select
from sqlalchemy.orm import Session

from analysis.errors import RowIssue
from analysis.fragments import PAIR_COLUMNS
from analysis.isomers import ISOMER_COLUMNS
from analysis.logp import LOGP_COLUMNS
from analysis.oacetyl import OAC_COLUMNS
from analysis.result import INPUT_COLUMNS, RESULT_COLUMNS, AnalysisResult
from store.db import Database
from store.jobs import Event, delete_results, mark_succeeded, parse_job_id
from store.models import JobResult, ResultModel, ResultRow

ROW_COLUMNS = [c.name for c in ResultRow.__table__.columns]
JSON_ROW_COLUMNS = ("extras", "flags")
# Typed as the table declares them, so a new column needs no second list here.
FLOAT_COLUMNS = frozenset(c.name for c in ResultRow.__table__.columns if isinstance(c.type, Float))
INT_COLUMNS = frozenset(c.name for c in ResultRow.__table__.columns if isinstance(c.type, Integer))


def save_result(db: Database, job_id: uuid.UUID | str, result: AnalysisResult) -> Event:
    """Replace the job's results and mark it succeeded, all or nothing.

    If the job is no longer running (cancelled meanwhile, or reclaimed), the transition fails,
    the transaction rolls back, and nothing is written.
    """
    key = parse_job_id(job_id)
    with db.transaction() as session:
        delete_results(session, key)
        session.execute(insert(JobResult), [_result_record(key, result)])
        session.execute(
            insert(ResultModel),
            [
                {
                    "job_id": key,
                    "position": i,
                    "name": str(m.get("name", "")),
                    "role": str(m.get("role", ""))[:128],
                    "status": str(m.get("status", "")),
                    "loo_rmsep": _finite(m.get("loo_rmsep")),
                    "report": _clean(m),
                }
                for i, m in enumerate(result.models)
            ],
        )
        _insert_rows(session, key, result.rows, result.extra_columns)
        counts = result.summary["counts"]
        message = "done: " + ", ".join(f"{counts[s]} {s}" for s in counts if counts[s])
        return mark_succeeded(session, key, message)


def _result_record(job_id: uuid.UUID, result: AnalysisResult) -> dict:
    return {
        "job_id": job_id,
        "summary": _clean(result.summary),
        "metrics": _clean(result.metrics),
        "parameters": _clean(result.parameters),
        "provenance": _clean(result.provenance),
        "extra_columns": list(result.extra_columns),
        "fragments": _records(result.fragments),
        "oacetylation": _records(result.oacetylation),
        "isomer_pairs": _records(result.isomer_pairs),
        "invalid_rows": [issue.to_dict() for issue in result.issues],
        "logp_checks": _records(result.logp_checks),
    }


def _finite(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _clean(value):
    """Plain JSON values: NaN and pandas NA become None, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _records(frame: pd.DataFrame) -> dict:
    """A table as {"columns": [...], "data": [[...], ...]}: compact, and quick to build and read.

    astype(object) boxes values as Python floats, ints and bools; missing values become None.
    """
    return {"columns": list(frame.columns), "data": frame.astype(object).where(frame.notna(), None).to_numpy().tolist()}


def _column_values(rows: pd.DataFrame, name: str) -> list:
    """One result column as plain Python values for the driver, missing values as None."""
    values = rows[name]
    if name == "flags":
        cache: dict[tuple, str] = {}
        for flags in values:
            key = tuple(flags)
            if key not in cache:
                cache[key] = json.dumps(list(flags))
        return [cache[tuple(flags)] for flags in values]
    if name in FLOAT_COLUMNS:
        array = values.to_numpy(dtype=float)
        return np.where(np.isnan(array), None, array).tolist()
    return values.astype(object).where(values.notna(), None).tolist()


def _row_columns(job_id: uuid.UUID, rows: pd.DataFrame, extra_columns: list[str], dialect: str) -> dict[str, list]:
    """Every stored column as a list, typed as the database driver stores it."""
    n = len(rows)
    columns: dict[str, list] = {
        name: _column_values(rows, name) for name in ROW_COLUMNS if name not in ("job_id", "extras")
    }
    # SQLAlchemy's Uuid is a native uuid on PostgreSQL and 32 hex characters elsewhere.
    columns["job_id"] = [str(job_id) if dialect == "postgresql" else job_id.hex] * n
    if extra_columns:
        extra = {name: rows[name].astype(object).where(rows[name].notna(), None).tolist() for name in extra_columns}
        columns["extras"] = [
            json.dumps({name: extra[name][i] for name in extra_columns}, ensure_ascii=False) for i in range(n)
        ]
    else:
        columns["extras"] = ["{}"] * n
    if dialect != "postgresql":
        columns["anchor"] = [None if v is None else int(v) for v in columns["anchor"]]
    return columns


def _insert_rows(session: Session, job_id: uuid.UUID, rows: pd.DataFrame, extra_columns: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    columns = _row_columns(job_id, rows, extra_columns, dialect)
    connection = session.connection()
    if dialect == "postgresql":
        _copy_rows(connection, columns)
        return
    tuples = list(zip(*(columns[name] for name in ROW_COLUMNS), strict=True))
    placeholders = ", ".join("?" for _ in ROW_COLUMNS)
    statement = f"INSERT INTO result_rows ({', '.join(ROW_COLUMNS)}) VALUES ({placeholders})"
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(statement, tuples)
    finally:
        cursor.close()


def _copy_rows(connection, columns: dict[str, list]) -> None:
    """PostgreSQL COPY through psycopg's own row writer: it escapes every value and writes None
    as NULL, and sends the data in blocks while rows are still being formatted."""
    statement = f"COPY result_rows ({', '.join(ROW_COLUMNS)}) FROM STDIN"
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in zip(*(columns[name] for name in ROW_COLUMNS), strict=True):
                copy.write_row(row)
    finally:
        cursor.close()


def read_rows(
    db: Database, job_id: uuid.UUID | str, *, statuses: Iterable[str] = (), extra_columns: list[str] | None = None
) -> pd.DataFrame:
    """A job's result rows as the engine's row table (optionally only some statuses)."""
    key = parse_job_id(job_id)
    names = [name for name in ROW_COLUMNS if name != "job_id"]
    # Untyped columns skip SQLAlchemy's per-value result processing; _as_row_table types them.
    # JSON comes back as text and is parsed once per distinct value (flags repeat a lot).
    selected = [cast(column(name), Text) if name in JSON_ROW_COLUMNS else column(name) for name in names]
    query = select(*selected).select_from(ResultRow.__table__).where(ResultRow.job_id == key)
    statuses = list(statuses)
    if statuses:
        query = query.where(ResultRow.status.in_(statuses))
    query = query.order_by(ResultRow.row)
    with db.session() as session:
        fetched = session.execute(query).all()
        if extra_columns is None:
            stored = session.execute(select(JobResult.extra_columns).where(JobResult.job_id == key)).scalar()
            extra_columns = list(stored or [])
    raw = dict(zip(names, zip(*fetched, strict=True), strict=True)) if fetched else {n: () for n in names}
    return _as_row_table(raw, extra_columns)


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _as_row_table(raw: dict[str, tuple], extra_columns: list[str]) -> pd.DataFrame:
    """Stored columns (plain tuples from the driver) as the engine's typed row table."""
    out: dict[str, object] = {"row": np.array(raw["row"], dtype=np.int64)}
    for name in INPUT_COLUMNS:
        if name == "anchor":
            out[name] = pd.array([None if v is None else bool(v) for v in raw[name]], dtype="boolean")
        elif name == "name":
            out[name] = np.array(raw[name], dtype=object)
        else:
            out[name] = _floats(raw[name])
    extras_cache: dict = {}
    extras = [_json(e, extras_cache) for e in raw["extras"]] if extra_columns else []
    for name in extra_columns:
        out[name] = np.array([e.get(name) if e else None for e in extras], dtype=object)
    for name in RESULT_COLUMNS:
        values = raw[name]
        if name == "flags":
            cache: dict = {}
            out[name] = [list(_json(v, cache) or []) for v in values]
        elif name in INT_COLUMNS:
            out[name] = pd.array(np.array(values, dtype=object), dtype="Int64")
        elif name in FLOAT_COLUMNS:
            out[name] = _floats(values)
        else:
            out[name] = np.array(values, dtype=object)
    return pd.DataFrame(out)


def _json(value, cache: dict | None = None):
    """SQLite hands back JSON as text, psycopg already parsed; repeated texts are parsed once."""
    if not isinstance(value, str):
        return value
    if cache is None:
        return json.loads(value)
    if value not in cache:
        cache[value] = json.loads(value)
    return cache[value]


def load_result(db: Database, job_id: uuid.UUID | str) -> AnalysisResult | None:
    """The stored result of a succeeded job, in the engine's own form (so every export works)."""
    key = parse_job_id(job_id)
    with db.session() as session:
        stored = session.get(JobResult, key)
        if stored is None:
            return None
        models = [
            m.report
            for m in session.execute(
                select(ResultModel).where(ResultModel.job_id == key).order_by(ResultModel.position)
            ).scalars()
        ]
    rows = read_rows(db, key, extra_columns=list(stored.extra_columns))
    return AnalysisResult(
        rows=rows,
        models=models,
        metrics=stored.metrics,
        fragments=_table(stored.fragments, PAIR_COLUMNS),
        oacetylation=_table(stored.oacetylation, OAC_COLUMNS, ints=("base_row", "series")),
        isomer_pairs=_table(stored.isomer_pairs, ISOMER_COLUMNS),
        issues=[RowIssue(**issue) for issue in stored.invalid_rows],
        summary=stored.summary,
        parameters=stored.parameters,
        provenance=stored.provenance,
        extra_columns=list(stored.extra_columns),
        logp_checks=_table(stored.logp_checks or {"columns": [], "data": []}, LOGP_COLUMNS),
    )


def _table(stored: dict, columns: list[str], ints: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = pd.DataFrame(stored["data"], columns=stored["columns"]).reindex(columns=columns)
    for name in frame.columns:
        if name in ints:
            frame[name] = frame[name].astype("Int64")
        elif (
            frame[name].dtype == object
            and frame[name].map(lambda v: v is None or isinstance(v, float)).all()
            and frame[name].notna().any()
        ):
            frame[name] = frame[name].astype(float)
    return frame
