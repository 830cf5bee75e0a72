"""Check every cell of a raw table and build the typed peak table the rules work on."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.errors import RowIssue, TableError
from analysis.names import COMPOSITION_UNITS, SUGAR_UNITS, ParsedName, split_annotation, try_parse_name
from analysis.reader import DISPLAY_NAMES, RawTable

RT_MAX_MINUTES = 300.0
ANCHOR_VALUES = {
    "t": True,
    "true": True,
    "yes": True,
    "1": True,
    "f": False,
    "false": False,
    "no": False,
    "0": False,
}
MOLECULAR_SPECIES = "molecular_species"  # the column for what follows '|' in a name
PARSED_COLUMNS = (
    "canonical_name",
    "head",
    "prefix",
    "isomer",
    *COMPOSITION_UNITS,
    "total_sugars",
    "carbons",
    "double_bonds",
    "oxygen",
)
_NOT_FINITE = {
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "infinity",
    "+infinity",
    "-infinity",
}

# A plain decimal number: text that matches but does not convert to a finite float overflowed.
_NUMBER_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Besides ASCII, a name may hold whitespace and the Greek alpha of an isomer ("GQ1bα").
_NAME_EXTRA_CHARACTERS = frozenset("α")

Progress = Callable[[float, str], None]


@dataclasses.dataclass
class PeakTable:
    """Typed rows (valid and invalid) with the problems found and where the file came from."""

    frame: pd.DataFrame
    issues: list[RowIssue]
    extra_columns: list[str]
    filename: str
    sha256: str
    n_bytes: int
    file_format: str
    delimiter: str | None
    sheet: str | None
    notices: list[str]
    mapping: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # (row, name, why)
    reading: dict = dataclasses.field(default_factory=dict)  # layout recognised, columns used, rows skipped

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def n_invalid(self) -> int:
        return int((~self.frame["valid"]).sum())

    def source_info(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "sha256": self.sha256,
            "bytes": self.n_bytes,
            "format": self.file_format,
            "delimiter": {",": "comma", ";": "semicolon", "\t": "tab"}.get(self.delimiter or ""),
            "sheet": self.sheet,
            "rows": self.n_rows,
            "notices": list(self.notices),
            **({"mapping": dict(self.mapping)} if self.mapping else {}),
            **({"reading": self.reading} if self.reading else {}),
            "skipped_rows": len(self.skipped),
        }


def validate_table(raw: RawTable, progress: Progress | None = None) -> PeakTable:
    """Type every required cell, parse every name, and record each problem by row and column."""
    rows = np.asarray(raw.row_numbers, dtype=np.int64)
    columns = {field: pd.Series([r[i] for r in raw.records], dtype=object) for field, i in raw.field_index.items()}
    issues: list[RowIssue] = list(raw.row_issues)
    notices = list(raw.notices)
    decimal_comma = raw.delimiter in (";", "\t")

    frame = pd.DataFrame({"row": rows})
    frame["name"] = columns["name"].str.strip()
    converted_commas = False
    for field, check in (("rt", _rt_rule), ("volume", _volume_rule), ("log_p", None)):
        if field not in columns:  # Log P, optional, and the table has no such column
            frame[field] = np.full(len(rows), np.nan)
            continue
        values, field_issues, used_comma = _parse_numbers(columns[field], field, rows, decimal_comma, check)
        _refuse_text_column(columns[field], values, DISPLAY_NAMES[field], raw.reading)
        frame[field] = values
        issues.extend(field_issues)
        converted_commas |= used_comma
    if converted_commas:
        notices.append("decimal commas were read as decimal points")
    frame["anchor"], anchor_issues = _parse_anchor(columns["anchor"], rows)
    issues.extend(anchor_issues)
    if progress:
        progress(0.4, "numbers and anchor flags checked")

    names, ms1_only, molecular, tags = _annotations(frame["name"])
    parsed, name_issues = _parse_names(names, rows, frame["name"])
    issues.extend(name_issues)
    for column in PARSED_COLUMNS:
        frame[column] = parsed[column].to_numpy()
    extra_names = [name for name, _ in raw.extra_columns]
    if ms1_only.any():
        notices.extend(_unconfirmed_notices(frame, ms1_only, tags))
        frame.loc[ms1_only, "anchor"] = False
    extras = {name: [r[index] for r in raw.records] for name, index in raw.extra_columns}
    if (molecular != "").any():
        column = MOLECULAR_SPECIES if MOLECULAR_SPECIES not in extras else f"{MOLECULAR_SPECIES} (from Name)"
        extras[column] = list(molecular)
        extra_names.append(column)
        notices.append(f"names of the form 'species|molecular species': the part after '|' is in column '{column}'")
    if extras:  # at once: one column at a time is quadratic in the number of columns
        frame = pd.concat([frame, pd.DataFrame(extras, index=frame.index)], axis=1)
    if progress:
        progress(1.0, f"{len(frame):,} rows checked")

    issues.sort(key=lambda issue: (issue.row, _column_order(issue.column)))
    bad_rows = {issue.row for issue in issues}
    frame["valid"] = ~frame["row"].isin(bad_rows)
    frame["invalid_reason"] = _reasons_by_row(issues, frame["row"])
    return PeakTable(
        frame=frame,
        issues=issues,
        extra_columns=extra_names,
        filename=raw.filename,
        sha256=raw.sha256,
        n_bytes=raw.n_bytes,
        file_format=raw.file_format,
        delimiter=raw.delimiter,
        sheet=raw.sheet,
        notices=notices,
        mapping=raw.mapping,
        skipped=raw.skipped,
        reading=raw.reading,
    )


def _refuse_text_column(texts: pd.Series, values: np.ndarray, label: str, reading: dict) -> None:
    """A numeric field whose every cell is text: the wrong column is mapped to it, not bad rows."""
    if len(values) < 2 or not np.isnan(values).all():
        return
    filled = texts[texts.str.strip() != ""]
    if len(filled) < len(texts) or filled.str.strip().str.lower().isin(_NOT_FINITE).any():
        return
    source = reading.get("columns", {}).get(label, label)
    raise TableError(
        f"{label} is read from {source!r}, which holds text, not numbers (e.g. {filled.iat[0][:40]!r}); "
        f"map {label} to the column that holds it"
    )


def _column_order(column: str) -> int:
    order = list(DISPLAY_NAMES.values())
    return order.index(column) if column in order else len(order)


def _rt_rule(values: np.ndarray) -> tuple[np.ndarray, str]:
    return (values <= 0) | (values > RT_MAX_MINUTES), f"must be > 0 and ≤ {RT_MAX_MINUTES:g} minutes"


def _volume_rule(values: np.ndarray) -> tuple[np.ndarray, str]:
    return values <= 0, "must be greater than 0"


def _parse_numbers(texts: pd.Series, field: str, rows: np.ndarray, decimal_comma: bool, rule):
    column = DISPLAY_NAMES[field]
    stripped = texts.str.strip()
    candidates = stripped
    used_comma = False
    if decimal_comma:
        comma_like = stripped.str.fullmatch(r"[+-]?\d+,\d+")
        if comma_like.any():
            candidates = stripped.where(~comma_like, stripped.str.replace(",", ".", regex=False))
            used_comma = True
    values = pd.to_numeric(candidates, errors="coerce").to_numpy(dtype=float, copy=True)
    issues = []
    bad = ~np.isfinite(values)
    for i in np.flatnonzero(bad):
        text = stripped.iat[i]
        if text == "":
            reason = "missing value"
        elif text.lower() in _NOT_FINITE or _is_float(text):
            reason = "must be a finite number"
        elif "," in text and not decimal_comma:
            reason = "not a number (use '.' as the decimal separator, without thousands separators)"
        else:
            reason = "not a number"
        issues.append(RowIssue(int(rows[i]), column, texts.iat[i], reason))
    if rule is not None:
        with np.errstate(invalid="ignore"):
            out_of_range, reason = rule(values)
        for i in np.flatnonzero(out_of_range & ~bad):
            issues.append(RowIssue(int(rows[i]), column, texts.iat[i], reason))
    values[bad] = np.nan
    return values, issues, used_comma


def _is_float(text: str) -> bool:
    return _NUMBER_SYNTAX.fullmatch(text) is not None


def _parse_anchor(texts: pd.Series, rows: np.ndarray):
    mapped = texts.str.strip().str.lower().map(ANCHOR_VALUES)
    issues = []
    for i in np.flatnonzero(mapped.isna().to_numpy()):
        text = texts.iat[i]
        reason = "missing value" if not text.strip() else "expected T/F, true/false, yes/no or 1/0"
        issues.append(RowIssue(int(rows[i]), "Anchor", text, reason))
    return mapped.fillna(False).astype(bool).to_numpy(), issues


def _annotations(written: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    """From the names as written (text, once per distinct name): the species names to parse,
    which rows are unconfirmed annotations and their prefix, and the molecular species after a '|'."""
    codes, unique = pd.factorize(written, sort=False)
    parts = [split_annotation(str(text)) for text in unique]
    names = np.array([part.name for part in parts], dtype=object)[codes]
    ms1_only = np.array([part.ms1_only for part in parts], dtype=bool)[codes]
    molecular = np.array([part.molecular_species for part in parts], dtype=object)[codes]
    tags = np.array([part.tag for part in parts], dtype=object)[codes]
    return pd.Series(names, index=written.index, dtype=object), ms1_only, molecular, tags


_TAG_MEANING = {
    "w/o ms2": "MS1 only",
    "no ms2": "MS1 only",
    "low score": "MS/MS matched with a low score",
    "unsettled": "annotation not settled",
}


def _unconfirmed_notices(frame: pd.DataFrame, unconfirmed: np.ndarray, tags: np.ndarray) -> list[str]:
    """One notice per prefix (`w/o MS2:`, `no MS2:`, ...): how many rows, how many the file marked as anchors."""
    notices = []
    marked_anchor = frame["anchor"].fillna(False).astype(bool).to_numpy()
    for tag in dict.fromkeys(tags[unconfirmed]):
        rows = unconfirmed & (tags == tag)
        count, marked = int(rows.sum()), int((rows & marked_anchor).sum())
        meaning = _TAG_MEANING.get(tag.lower(), "not confirmed")
        notices.append(
            f"{count} row{'s are' if count > 1 else ' is'} annotated '{tag}:' ({meaning}) and never an anchor"
            + (f" ({marked} marked as anchor{'s' if marked > 1 else ''} in the file)" if marked else "")
        )
    return notices


def _parse_names(names: pd.Series, rows: np.ndarray, written: pd.Series | None = None):
    """Parse each distinct name once; a problem is reported with the name as written."""
    written = names if written is None else written
    codes, unique = pd.factorize(names, sort=False)
    empty = dict.fromkeys(PARSED_COLUMNS)
    records, errors = [], {}
    for code, text in enumerate(unique):
        result = _parse_one_name(text) if text else "missing value"
        if isinstance(result, ParsedName):
            records.append(_parsed_fields(result))
        else:
            records.append(empty)
            errors[code] = result
    parsed = pd.DataFrame(records, columns=list(PARSED_COLUMNS)).iloc[codes].reset_index(drop=True)
    issues = []
    if errors:
        for i in np.flatnonzero(np.isin(codes, list(errors))):
            issues.append(RowIssue(int(rows[i]), "Name", written.iat[i], errors[codes[i]]))
    return parsed, issues


def _parse_one_name(text: str) -> ParsedName | str:
    """Parse a name, or say why not; characters outside the grammar are named by code point."""
    foreign = (
        None
        if text.isascii()
        else next((ch for ch in text if ord(ch) > 127 and not ch.isspace() and ch not in _NAME_EXTRA_CHARACTERS), None)
    )
    shown = text if len(text) <= 60 else text[:57] + "..."
    if foreign is not None:
        label = unicodedata.name(foreign, "unnamed character")
        return (
            f'"{shown}": character {foreign!r} (U+{ord(foreign):04X} {label}) is not part of a ganglioside name; '
            "type names with plain ASCII letters and digits"
        )
    try:
        return try_parse_name(text)
    except ValueError as exc:
        return f'"{shown}": cannot be read as a ganglioside name ({exc})'


def _parsed_fields(parsed: ParsedName) -> dict[str, object]:
    composition = parsed.composition
    prefix = parsed.prefix
    fields: dict[str, object] = {
        "canonical_name": f"{prefix}({parsed.chain})",
        "head": parsed.head,
        "prefix": prefix,
        "isomer": parsed.isomer,
        "total_sugars": sum(composition[unit] for unit in ("sialic", "neutral", *SUGAR_UNITS)),
        "carbons": parsed.carbons,
        "double_bonds": parsed.double_bonds,
        "oxygen": parsed.oxygen,
    }
    fields.update(composition)
    return fields


def _reasons_by_row(issues: list[RowIssue], rows: pd.Series) -> list[str]:
    by_row: dict[int, list[str]] = {}
    for issue in issues:
        by_row.setdefault(issue.row, []).append(f"{issue.column} {issue.value!r}: {issue.reason}")
    return ["; ".join(by_row[r]) if r in by_row else "" for r in rows]
