"""Read a peak table from CSV, TSV or XLSX bytes into header + text records.

Only structural problems are decided here (unreadable file, missing column, too many rows);
cell values are checked by `analysis.validate`.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from analysis.errors import RowIssue, TableError

REQUIRED_COLUMNS = ("name", "rt", "volume", "log_p", "anchor")
DISPLAY_NAMES = {
    "name": "Name",
    "rt": "RT",
    "volume": "Volume",
    "log_p": "Log P",
    "anchor": "Anchor",
}
HEADER_ALIASES = {
    "name": ("name", "compound", "compoundname", "lipid"),
    "rt": ("rt", "retentiontime", "rtmin", "retentiontimemin"),
    "volume": ("volume", "area", "peakarea", "intensity"),
    "log_p": ("logp", "clogp"),
    "anchor": ("anchor", "isanchor", "confirmed", "msms"),
}
_FIELD_BY_ALIAS = {alias: field for field, aliases in HEADER_ALIASES.items() for alias in aliases}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


@dataclasses.dataclass
class RawTable:
    """The file's header and records as text, with where each record sits in the file."""

    columns: list[str]  # output column names: canonical for required, original for extras
    field_index: dict[str, int]  # canonical field -> position in each record
    extra_columns: list[tuple[str, int]]  # (output name, position)
    records: list[list[str]]
    row_numbers: list[int]  # 1-based data row (the first row under the header is 1)
    filename: str
    sha256: str
    n_bytes: int
    file_format: str  # csv, tsv or xlsx
    delimiter: str | None
    sheet: str | None
    notices: list[str]
    row_issues: list[RowIssue]  # rows whose shape is wrong (more cells than the header)


def normalise_header(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def read_table(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    max_rows: int = 1_000_000,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> RawTable:
    """Read a table from a path or from bytes; raise TableError for structural problems."""
    if isinstance(source, str | Path):
        path = Path(source)
        filename = filename or path.name
        try:
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                raise TableError(_too_large(size, max_bytes))
            data = path.read_bytes()
        except OSError as exc:
            raise TableError(f"cannot read {path}: {exc.strerror or exc}") from None
    else:
        data = bytes(source)
    filename = filename or "upload"
    if max_bytes is not None and len(data) > max_bytes:
        raise TableError(_too_large(len(data), max_bytes))
    if not data.strip():
        raise TableError("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(_ZIP_MAGIC):
        header, rows, sheet = _xlsx_rows(data)
        return _build(header, rows, filename, digest, len(data), "xlsx", None, sheet, max_rows)
    if data.startswith(_OLE_MAGIC):
        raise TableError("legacy .xls workbooks are not supported; save the sheet as .xlsx or CSV")
    text = _decode(data)
    lines = _logical_lines(text)
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise TableError("the file is empty")
    delimiter = _sniff_delimiter(header_line)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    rows = _skip_to_header(records)
    header = next(rows)
    file_format = "tsv" if delimiter == "\t" else "csv"
    return _build(
        header,
        rows,
        filename,
        digest,
        len(data),
        file_format,
        delimiter,
        None,
        max_rows,
    )


def _too_large(size: int, limit: int) -> str:
    return f"the file is {size / 1048576:.1f} MB, larger than the {limit / 1048576:g} MB limit"


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise TableError("the file starts like UTF-16 text but cannot be decoded as UTF-16") from None
    sample = data[:65536]
    if b"\x00" in sample:
        raise TableError("this is not a text table (the file holds binary data); upload CSV, TSV or XLSX")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
            "save it as 'CSV UTF-8' or XLSX"
        ) from None


def _logical_lines(text: str) -> list[str]:
    # Only the first few lines are needed to find the header.
    return text[:65536].splitlines()[:50]


def _sniff_delimiter(header_line: str) -> str:
    """Pick the delimiter that turns the header into the most recognised column names."""
    best, best_key = ",", (-1, -1)
    for delimiter in DELIMITERS:
        cells = next(csv.reader([header_line], delimiter=delimiter))
        known = sum(normalise_header(cell) in _FIELD_BY_ALIAS for cell in cells)
        key = (known, len(cells))
        if key > best_key:
            best, best_key = delimiter, key
    return best


def _skip_to_header(records: Iterable[list[str]]) -> Iterator[list[str]]:
    iterator = iter(records)
    try:
        for record in iterator:
            if any(cell.strip() for cell in record):
                yield record
                break
        yield from iterator
    except csv.Error as exc:
        raise TableError(f"the file is not a readable delimited table: {exc}") from None


def _xlsx_rows(data: bytes) -> tuple[list[str], Iterator[list[str]], str]:
    try:
        import openpyxl

        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged archive
        raise TableError(
            f"cannot open the Excel workbook ({type(exc).__name__}: {exc}); is it a valid .xlsx file?"
        ) from None
    sheets_seen = []
    for sheet in workbook.worksheets:
        sheets_seen.append(sheet.title)
        rows = (list(map(_cell_text, values)) for values in sheet.iter_rows(values_only=True))
        rows = _skip_to_header(rows)
        header = next(rows, None)
        if header is None:
            continue
        fields = {_FIELD_BY_ALIAS.get(normalise_header(cell)) for cell in header}
        if set(REQUIRED_COLUMNS) <= fields or len(workbook.worksheets) == 1:
            return header, rows, sheet.title
    if not sheets_seen or all(not s for s in sheets_seen):
        raise TableError("the workbook has no sheets")
    raise TableError(
        f"no sheet has the required columns Name, RT, Volume, Log P and Anchor (sheets: {', '.join(sheets_seen)})"
    )


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _build(
    header: list[str],
    rows: Iterator[list[str]],
    filename: str,
    digest: str,
    n_bytes: int,
    file_format: str,
    delimiter: str | None,
    sheet: str | None,
    max_rows: int,
) -> RawTable:
    header = [cell.strip() for cell in header]
    field_index, extras, notices = _map_header(header, delimiter)
    width = len(header)
    records: list[list[str]] = []
    row_numbers: list[int] = []
    row_issues: list[RowIssue] = []
    blank_rows = 0
    for number, record in enumerate(rows, start=1):
        if not any(cell.strip() for cell in record):
            blank_rows += 1
            continue
        if len(records) >= max_rows:
            raise TableError(f"the table has more than {max_rows:,} data rows (the limit); split it or raise max_rows")
        if len(record) < width:
            record = record + [""] * (width - len(record))
        elif len(record) > width:
            overflow = [cell for cell in record[width:] if cell.strip()]
            if overflow:
                row_issues.append(
                    RowIssue(
                        number,
                        f"column {width + 1}",
                        overflow[0],
                        f"the row has {len(record)} cells but the header has {width}; "
                        "a stray delimiter or an unquoted value?",
                    )
                )
            record = record[:width]
        records.append(record)
        row_numbers.append(number)
    if not records:
        raise TableError("the table has a header but no data rows")
    extras = [
        (name, index) for name, index in extras if name or any(index < len(r) and r[index].strip() for r in records)
    ]
    extras = [(name or f"column_{index + 1}", index) for name, index in extras]
    if blank_rows:
        notices.append(f"{blank_rows} blank row{'s' if blank_rows > 1 else ''} ignored")
    return RawTable(
        columns=list(REQUIRED_COLUMNS) + [name for name, _ in extras],
        field_index=field_index,
        extra_columns=extras,
        records=records,
        row_numbers=row_numbers,
        filename=filename,
        sha256=digest,
        n_bytes=n_bytes,
        file_format=file_format,
        delimiter=delimiter,
        sheet=sheet,
        notices=notices,
        row_issues=row_issues,
    )


# Output fields an extra input column must not shadow.
RESERVED_OUTPUT_NAMES = frozenset(
    {
        "row",
        "status",
        "reason",
        "flags",
        "predicted_rt",
        "pi_low",
        "pi_high",
        "residual",
        "studentized_residual",
        "p_value",
        "q_value",
        "fragment_of",
        "merged_volume",
        "isomer_group",
        "series",
        "head",
        "prefix",
        "canonical_name",
        "isomer",
        "carbons",
        "double_bonds",
        "oxygen",
        "sialic",
        "neutral",
        "total_sugars",
        "hex",
        "hexnac",
        "dhex",
        "neuac",
        "neugc",
        "oac",
        *REQUIRED_COLUMNS,
    }
)


def _map_header(header: list[str], delimiter: str | None):
    field_index: dict[str, int] = {}
    extras: list[tuple[str, int]] = []
    notices: list[str] = []
    seen_extra: dict[str, int] = {}
    for index, cell in enumerate(header):
        field = _FIELD_BY_ALIAS.get(normalise_header(cell))
        if field is not None:
            if field in field_index:
                first = header[field_index[field]]
                raise TableError(
                    f"columns '{first}' (column {field_index[field] + 1}) and '{cell}' (column {index + 1}) "
                    f"both mean {DISPLAY_NAMES[field]}; keep only one"
                )
            field_index[field] = index
            continue
        if cell:
            if cell in seen_extra:
                raise TableError(f"duplicate column name '{cell}' (columns {seen_extra[cell] + 1} and {index + 1})")
            seen_extra[cell] = index
        name = cell
        if name and name.lower() in RESERVED_OUTPUT_NAMES:
            name = f"{cell} (input)"
            notices.append(f"input column '{cell}' renamed to '{name}' to keep it apart from the result column")
        extras.append((name, index))
    missing = [DISPLAY_NAMES[f] for f in REQUIRED_COLUMNS if f not in field_index]
    if missing:
        found = ", ".join(repr(c) for c in header[:8]) + (" ..." if len(header) > 8 else "")
        hint = ""
        if len(header) == 1 and any(ch in header[0] for ch in "|:, ;\t"):
            hint = " The header looks like a single column: separate columns with commas, semicolons or tabs."
        raise TableError(
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found {found}).{hint}"
        )
    return field_index, extras, notices
