"""Accepting an upload: check it completely before anything is stored (worker/control.py then
stores and dispatches it). The error says what to fix, with a code of dashboard/errors.py the
API answers with (the upload page shows the same message)."""

from __future__ import annotations

import json
import re
from pathlib import PurePath

from analysis.errors import ParameterError, TableError, UnsupportedFormatError
from analysis.params import Parameters
from analysis.pipeline import load_table
from analysis.reader import check_mapping
from analysis.validate import PeakTable
from dashboard.errors import SubmissionError

__all__ = ["SubmissionError", "check_email", "check_upload", "parse_mapping", "parse_parameters"]

ACCEPTED_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx")
MAX_ISSUES_RETURNED = 1000


def parse_parameters(raw: str | dict | None) -> Parameters:
    if raw in (None, ""):
        return Parameters()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SubmissionError("malformed_parameters", f"params is not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise SubmissionError("malformed_parameters", "params is nested too deeply") from None
    if not isinstance(raw, dict):
        raise SubmissionError("malformed_parameters", "params must be a JSON object of name: value")
    try:
        return Parameters.from_mapping(raw)
    except ParameterError as exc:
        raise SubmissionError("invalid_parameters", exc.message) from None


def parse_mapping(raw: str | dict | None) -> dict[str, str] | None:
    """The `mapping` field: a JSON object {field: column}, e.g. {"RT": "Average Rt(min)"}."""
    if raw in (None, ""):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            raise SubmissionError("malformed_parameters", "mapping is not valid JSON") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise SubmissionError(
            "malformed_parameters", 'mapping must be a JSON object of field: column, e.g. {"RT": "Average Rt(min)"}'
        )
    try:
        return check_mapping(raw) or None
    except TableError as exc:
        raise SubmissionError("invalid_table", exc.message) from None


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL_LENGTH = 320  # RFC 3696: 64 for the local part, 255 for the domain, the "@"


def check_email(value: str | None) -> str | None:
    """The notification address, or None; one plain address, not a list or a header."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL.fullmatch(value):
        raise SubmissionError(
            "invalid_email", f"notify_email must be one e-mail address of at most {MAX_EMAIL_LENGTH} characters"
        )
    return value


def check_upload(
    filename: str, data: bytes, params: Parameters, max_bytes: int, mapping: dict[str, str] | None = None
) -> PeakTable:
    """Read and validate the file exactly as the analysis will; raise SubmissionError if it cannot run."""
    name = PurePath(filename or "").name or "upload"
    if len(data) > max_bytes:
        raise SubmissionError(
            "too_large", f"{name} is {len(data) / 1048576:.1f} MB; the limit is {max_bytes / 1048576:g} MB"
        )
    suffix = PurePath(name).suffix.lower()
    if suffix and suffix not in ACCEPTED_EXTENSIONS:
        raise SubmissionError("unsupported_type", f"{name}: {suffix} files are not accepted; upload CSV, TSV or XLSX")
    try:
        table = load_table(data, filename=name, params=params, max_bytes=max_bytes, mapping=mapping)
    except UnsupportedFormatError as exc:
        raise SubmissionError("unsupported_type", f"{name}: {exc.message}") from None
    except TableError as exc:
        raise SubmissionError("invalid_table", f"{name}: {exc.message}") from None
    if table.issues and params.on_invalid_rows == "reject":
        bad_rows = len({issue.row for issue in table.issues})
        raise SubmissionError(
            "invalid_rows",
            f"{name}: {bad_rows} of {table.n_rows} rows are invalid; fix them, or submit with "
            "on_invalid_rows = skip to analyse the valid rows only",
            [issue.to_dict() for issue in table.issues[:MAX_ISSUES_RETURNED]],
        )
    return table
