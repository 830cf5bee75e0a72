"""Write a result as CSV, XLSX or JSON; spreadsheet exports neutralise formula-like cells."""

from __future__ import annotations

import datetime as dt
import errno
import io
import json
import math
import os
import secrets
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.result import AnalysisResult

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FORMATS = ("csv", "xlsx", "json")


def neutralise(value: object) -> object:
    """Make a text cell inert in a spreadsheet by prefixing an apostrophe when it could be a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column]
            is_text = values.map(lambda v: isinstance(v, str))
            risky = is_text & values.where(is_text, "").astype(str).str.startswith(FORMULA_STARTS)
            if risky.any():
                out[column] = values.where(~risky, "'" + values.where(risky, "").astype(str))
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def _flat_rows(result: AnalysisResult) -> pd.DataFrame:
    rows = result.rows.copy()
    rows["flags"] = rows["flags"].map(";".join)
    return rows


def to_csv_bytes(result: AnalysisResult) -> bytes:
    """The per-row table as UTF-8 CSV (one record per input row, RFC 4180 CRLF line ends)."""
    buffer = io.StringIO()
    # The csv module quotes a cell only for the characters of the line terminator: with "\n" a
    # cell holding a bare CR is written unquoted, and readers (Excel included) split the record
    # there, so text after the CR would start a new line unneutralised. CRLF quotes both.
    _neutralise_frame(_flat_rows(result)).to_csv(buffer, index=False, lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8")


def models_table(result: AnalysisResult) -> pd.DataFrame:
    """One line per coefficient of every model, with the model's own statistics repeated."""
    records = []
    for model in result.models:
        stats = {k: v for k, v in model.items() if not isinstance(v, list | dict)}
        for coefficient in model.get("coefficients", [{}]):
            records.append({**stats, **coefficient})
    return pd.DataFrame(records)


def key_value_table(result: AnalysisResult) -> pd.DataFrame:
    records = []
    for section, values in (
        ("summary", result.summary),
        ("metrics", result.metrics),
        ("parameters", result.parameters),
        ("provenance", result.provenance),
    ):
        for key, value in _flatten(values):
            records.append({"section": section, "key": key, "value": _plain(value)})
    return pd.DataFrame(records, columns=["section", "key", "value"])


def _flatten(values: dict, prefix: str = ""):
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        elif isinstance(value, list):
            yield name, ", ".join(map(str, value))
        else:
            yield name, value


def _plain(value: object) -> object:
    if is_missing(value):
        return ""
    return value if isinstance(value, int | float | str) else str(value)


def to_xlsx_bytes(result: AnalysisResult) -> bytes:
    """A workbook with the rows, the models, each rule's table, and parameters & provenance."""
    sheets = {
        "rows": _flat_rows(result),
        "models": models_table(result),
        "fragments": result.fragments,
        "O-acetylation": result.oacetylation,
        "isomer series": result.isomer_pairs,
        "Log P checks": result.logp_checks,
        "invalid rows": result.invalid_rows(),
        "parameters & provenance": key_value_table(result),
    }
    buffer = io.BytesIO()
    options = {
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "nan_inf_to_errors": False,
    }
    with pd.ExcelWriter(buffer, engine="xlsxwriter", engine_kwargs={"options": options}) as writer:
        created = dt.datetime.fromisoformat(result.provenance["started"]).replace(tzinfo=None)
        writer.book.set_properties({"title": "Ganglioside RT check", "created": created})
        for name, frame in sheets.items():
            frame = _neutralise_frame(frame)
            frame = frame.astype(object).where(frame.notna(), None)
            frame.to_excel(writer, sheet_name=name, index=False)
            worksheet = writer.sheets[name]
            worksheet.freeze_panes(1, 0)
            if len(frame.columns):
                worksheet.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)
    return buffer.getvalue()


def to_json_dict(result: AnalysisResult) -> dict:
    """The result as plain JSON values (NaN becomes null)."""
    return json.loads(to_json_bytes(result))


def to_json_bytes(result: AnalysisResult) -> bytes:
    """The JSON document of design.md: summary, metrics, rows, models, parameters, provenance."""
    parts = {
        "summary": _dumps(result.summary),
        "metrics": _dumps(result.metrics),
        "rows": _frame_json(result.rows),
        "models": _dumps(result.models),
        "fragments": _frame_json(result.fragments),
        "oacetylation": _frame_json(result.oacetylation),
        "isomer_pairs": _frame_json(result.isomer_pairs),
        "logp_checks": _frame_json(result.logp_checks),
        "invalid_rows": _frame_json(result.invalid_rows()),
        "parameters": _dumps(result.parameters),
        "provenance": _dumps(result.provenance),
    }
    body = ",".join(f"{json.dumps(key)}:{value}" for key, value in parts.items())
    return ("{" + body + "}").encode("utf-8")


def _frame_json(frame: pd.DataFrame) -> str:
    # Python's float repr is the shortest text that reads back as the same double; pandas' own
    # encoder caps floats at 15 decimal places, which turns a p-value of 1.441e-13 into 1.44e-13.
    keys = [str(column) for column in frame.columns]
    columns = [_column_values(frame[column]) for column in frame.columns]
    records = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
    return _dumps(records, clean=False)


def _column_values(values: pd.Series) -> list:
    """A column as JSON-ready Python values: missing and non-finite numbers become None."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        numbers = values.to_numpy()
        out = numbers.tolist()
        for i in np.flatnonzero(~np.isfinite(numbers)):
            out[i] = None
        return out
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return values.to_numpy().tolist()
    if isinstance(dtype, np.dtype):  # object: anything, lists included, so check every value
        return [json_safe(value) for value in values.tolist()]
    # Extension dtypes (str, Int64, boolean, ...) hold one kind of scalar plus a missing marker.
    out = values.to_numpy(dtype=object, na_value=None).tolist()
    if pd.api.types.is_float_dtype(dtype):  # a nullable float column may still hold NaN or inf
        out = [json_safe(value) for value in out]
    return out


def _dumps(value: object, clean: bool = True) -> str:
    return json.dumps(
        json_safe(value) if clean else value,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
        default=_json_default,
    )


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return json_safe(value)
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def is_missing(value: object) -> bool:
    """True for None and for a NaN or infinite float: a value that has no number to show or write."""
    return value is None or (isinstance(value, float | np.floating) and not math.isfinite(value))


def json_safe(value: object) -> object:
    """`value` as plain JSON values: numpy scalars become Python ones; NaN, inf, pandas NA and NaT become None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value) or value is pd.NA or value is pd.NaT:
        return None
    return value


WRITERS = {"csv": to_csv_bytes, "xlsx": to_xlsx_bytes, "json": to_json_bytes}


def export_bytes(result: AnalysisResult, file_format: str) -> bytes:
    try:
        writer = WRITERS[file_format]
    except KeyError:
        raise InputError(f"unknown export format {file_format!r}; use one of {', '.join(EXPORT_FORMATS)}") from None
    return writer(result)


def write_result(result: AnalysisResult, path: str | Path) -> Path:
    """Write by file extension, atomically: a crash never leaves a half-written file."""
    path = Path(path)
    file_format = path.suffix.lower().lstrip(".")
    if file_format not in WRITERS:
        raise InputError(f"cannot write '{path.name}': use a .csv, .xlsx or .json file name")
    check_writable(path)
    return write_bytes_atomic(export_bytes(result, file_format), path)


def check_writable(path: str | Path) -> None:
    """Raise InputError when `path` cannot be a file: its folder is missing or it is a folder."""
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise InputError(f"cannot write '{path}': the folder {directory} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write '{path}': it is a folder")


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it into place.

    A new file gets the permissions of any newly created file (0666 less the umask), not the
    owner-only mode of `tempfile.mkstemp`; a replaced file keeps its permissions.
    """
    path = Path(path)
    check_writable(path)
    try:
        fd, temporary = _create_beside(path)
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if path.is_file():
                os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write '{path}': {exc.strerror or exc}") from None
        raise
    return path


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, unique temporary file in `path`'s folder; the umask decides its mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))
