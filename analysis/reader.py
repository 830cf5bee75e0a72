"""Read a peak table from CSV, TSV or XLSX bytes into header + text records.

Only structural problems are decided here (unreadable file, missing column, too many rows);
cell values are checked by `analysis.validate`.

Every dimension of a file is bounded before it can cost much: bytes (`max_bytes`), rows
(`max_rows`), columns (`MAX_COLUMNS`), characters per cell (`MAX_CELL_CHARS`, what a spreadsheet
cell holds at most) and, for a workbook, what its archive expands to (`XLSX_MAX_UNCOMPRESSED`,
`XLSX_MAX_RATIO`: a zip bomb is refused before anything is inflated). Workbook XML is parsed by
openpyxl through defusedxml, which refuses entity declarations (no "billion laughs").
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from defusedxml import DefusedXmlException

from analysis.errors import RowIssue, TableError, UnsupportedFormatError

INPUT_FIELDS = ("name", "rt", "volume", "log_p", "anchor")  # the table's own columns, in output order
OPTIONAL_COLUMNS = ("log_p",)  # the model never uses Log P; without it the Log P checks are skipped
REQUIRED_COLUMNS = tuple(field for field in INPUT_FIELDS if field not in OPTIONAL_COLUMNS)
NO_LOG_P_NOTICE = (
    "no Log P column: Log P is optional (the model does not use it); the Log P checks are skipped "
    "and the plots show retention time against carbon number instead"
)
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
MAX_COLUMNS = 5_000
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
XLSX_MAX_UNCOMPRESSED = 1024 * 1024 * 1024  # everything in the archive, inflated
XLSX_MAX_RATIO = 100  # inflated / compressed for one member over 1 MB (Apache POI's default check)
_RATIO_CHECKED_FROM = 1024 * 1024

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
    mapping: dict[str, str] = dataclasses.field(default_factory=dict)  # {field: column} the user gave


def normalise_header(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def check_mapping(mapping: dict[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """{field: column} with fields as `name`, `rt`, ... or as displayed (`Name`, `Log P`, ...);
    given as a dict or as (field, column) pairs (a field given twice is refused)."""
    fields = {normalise_header(DISPLAY_NAMES[f]): f for f in INPUT_FIELDS}
    fields |= {f.replace("_", ""): f for f in INPUT_FIELDS}
    checked: dict[str, str] = {}
    pairs = mapping.items() if isinstance(mapping, dict) else (mapping or ())
    for key, column in pairs:
        field = fields.get(normalise_header(str(key)))
        if field is None:
            known = ", ".join(DISPLAY_NAMES[f] for f in INPUT_FIELDS)
            raise TableError(f"the column mapping names {key!r}, which is not a field (fields: {known})")
        if not isinstance(column, str) or not column.strip():
            raise TableError(f"the column mapping gives no column for {DISPLAY_NAMES[field]}")
        if field in checked:
            raise TableError(f"the column mapping gives {DISPLAY_NAMES[field]} twice")
        checked[field] = column.strip()
    return checked


def _field_finder(mapping: dict[str, str]):
    """cell -> field: the mapped columns first; a mapped field is not guessed from aliases."""
    mapped = {normalise_header(column): field for field, column in mapping.items()}

    def field_of(cell: str) -> str | None:
        key = normalise_header(cell)
        if key in mapped:
            return mapped[key]
        field = _FIELD_BY_ALIAS.get(key)
        return None if field in mapping else field

    return field_of


def read_table(
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    max_rows: int = 1_000_000,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    mapping: dict[str, str] | None = None,
) -> RawTable:
    """Read a table from a path or from bytes; raise TableError for structural problems.

    `mapping` ({field: column}) says which column is which when the names are not the usual
    ones (`check_mapping`); the other fields are still found by their usual names."""
    mapping = check_mapping(mapping)
    field_of = _field_finder(mapping)
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
        except ValueError as exc:  # e.g. a NUL character in the path
            raise TableError(f"cannot read {str(path)!r}: {exc}") from None
    else:
        data = bytes(source)
    filename = filename or "upload"
    if max_bytes is not None and len(data) > max_bytes:
        raise TableError(_too_large(len(data), max_bytes))
    if not data.strip():
        raise TableError("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(_ZIP_MAGIC):
        header, rows, sheet = _xlsx_rows(data, field_of)
        return _build(header, rows, filename, digest, len(data), "xlsx", None, sheet, max_rows, mapping)
    if data.startswith(_OLE_MAGIC):
        raise UnsupportedFormatError("legacy .xls workbooks are not supported; save the sheet as .xlsx or CSV")
    if filename.lower().endswith(".xlsx"):
        raise UnsupportedFormatError("this is not a valid .xlsx workbook (an .xlsx file is a zip archive); re-save it")
    text = _decode(data)
    header_line = _first_content_line(text)
    if header_line is None:
        raise TableError("the file is empty (it holds only blank lines, delimiters or quotes)")
    delimiter = _sniff_delimiter(header_line, field_of)
    rows = _skip_to_header(_text_records(text, delimiter))
    header = next(rows, None)
    if header is None:
        raise TableError("the file is empty (it holds only blank lines, delimiters or quotes)")
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
        mapping,
    )


def _too_large(size: int, limit: int) -> str:
    return f"the file is {_format_size(size)}, larger than the {_format_size(limit)} upload limit"


def _format_size(n_bytes: int) -> str:
    if n_bytes < 1024:
        return f"{n_bytes:,} byte{'' if n_bytes == 1 else 's'}"
    unit, scale = next((u, s) for u, s in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)) if n_bytes >= s)
    value = n_bytes / scale
    return f"{value:.1f} {unit}" if value < 100 and not value.is_integer() else f"{value:.0f} {unit}"


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnsupportedFormatError("the file starts like UTF-16 text but cannot be decoded as UTF-16") from None
    sample = data[:65536]
    if b"\x00" in sample:
        raise UnsupportedFormatError("this is not a text table (the file holds binary data); upload CSV, TSV or XLSX")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedFormatError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
            "save it as 'CSV UTF-8' or XLSX"
        ) from None


_BLANK_LINE = re.compile(r"[\s,;\t\"]*")
# Appended after the text: it comes back as a row of its own unless a quote left open swallows it.
_END_MARK = "\u2063end-of-table\u2063"


def _first_content_line(text: str) -> str | None:
    """The first line holding something other than whitespace, delimiters and quotes."""
    for line in io.StringIO(text, newline=""):
        if not _BLANK_LINE.fullmatch(line):
            return line.rstrip("\r\n")
    return None


class _SpanningRecord(list):
    """A record read from more than one line of the file (a quoted cell holds a line break)."""


def _text_records(text: str, delimiter: str) -> Iterator[list[str]]:
    """Records of a delimited text; a quote left open until the end of the file is a TableError."""
    csv.field_size_limit(MAX_CELL_CHARS)  # longer cells stop the reader at once (csv.Error below)
    reader = csv.reader(_lines_then_end_mark(text), delimiter=delimiter, quotechar='"', strict=False)
    last_line = 0
    try:
        for record in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if record and record[-1].endswith(_END_MARK):
                if record == [_END_MARK]:
                    return
                raise TableError(
                    f'a quote character (") in the row starting on line {first_line} of the file is never closed, '
                    "so everything after it would be read as one cell; remove the stray quote or add its partner"
                )
            yield _SpanningRecord(record) if last_line > first_line else record
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise TableError(
                f"a cell around line {reader.line_num + 1} of the file is longer than {MAX_CELL_CHARS:,} characters "
                "(the most a spreadsheet cell holds); a quote character without its partner?"
            ) from None
        raise TableError(f"the file is not a readable delimited table: {exc}") from None


def _lines_then_end_mark(text: str) -> Iterator[str]:
    previous = None
    for line in io.StringIO(text, newline=""):
        if previous is not None:
            yield previous
        previous = line
    if previous is not None:
        yield previous if previous.endswith(("\n", "\r")) else previous + "\n"
    yield _END_MARK


def _sniff_delimiter(header_line: str, field_of=_FIELD_BY_ALIAS.get) -> str:
    """Pick the delimiter that turns the header into the most recognised column names."""
    best, best_key = ",", (-1, -1)
    for delimiter in DELIMITERS:
        try:
            cells = next(csv.reader([header_line], delimiter=delimiter))
        except csv.Error:  # e.g. a header line longer than any field may be; reading the file reports it
            continue
        known = sum(field_of(cell) is not None for cell in cells)
        key = (known, len(cells))
        if key > best_key:
            best, best_key = delimiter, key
    return best


def _skip_to_header(records: Iterable[list[str]]) -> Iterator[list[str]]:
    iterator = iter(records)
    for record in iterator:
        if not all(_BLANK_LINE.fullmatch(cell) for cell in record):
            yield record
            break
    yield from iterator


_ENTITIES_REFUSED = (
    "the workbook's XML declares entities or a document type, a way to make a small file expand "
    "without bound; such workbooks are refused. Re-save it from a spreadsheet program, or as CSV"
)


def _refused_xml(exc: BaseException | None) -> bool:
    """defusedxml refused the XML, perhaps wrapped by openpyxl in an error of its own."""
    while exc is not None:
        if isinstance(exc, DefusedXmlException):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _check_archive(data: bytes) -> None:
    """Refuse a workbook whose archive would inflate beyond the bounds, before inflating it."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UnsupportedFormatError(f"cannot open the Excel workbook ({exc}); is it a valid .xlsx file?") from None
    total = sum(member.file_size for member in members)
    if total > XLSX_MAX_UNCOMPRESSED:
        raise TableError(
            f"the workbook expands to {_format_size(total)}, more than the {_format_size(XLSX_MAX_UNCOMPRESSED)} "
            "this server reads; save the sheet as CSV, or split it"
        )
    for member in members:
        if member.file_size > _RATIO_CHECKED_FROM and member.file_size > XLSX_MAX_RATIO * max(member.compress_size, 1):
            raise TableError(
                f"the workbook's part {member.filename} expands {member.file_size / max(member.compress_size, 1):,.0f} "
                f"times (to {_format_size(member.file_size)}); more than {XLSX_MAX_RATIO} times is refused as a "
                "zip bomb. Save the sheet as CSV if this is a real table"
            )


def _xlsx_rows(data: bytes, field_of) -> tuple[list[str], Iterator[list[str]], str]:
    _check_archive(data)
    try:
        import openpyxl

        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged archive
        if _refused_xml(exc):
            raise TableError(_ENTITIES_REFUSED) from None
        raise UnsupportedFormatError(
            f"cannot open the Excel workbook ({type(exc).__name__}: {exc}); is it a valid .xlsx file?"
        ) from None
    sheets_seen = []
    lacking = []
    for sheet in workbook.worksheets:
        sheets_seen.append(sheet.title)
        rows = _skip_to_header(_sheet_rows(sheet))
        header = next(rows, None)
        if header is None:
            continue
        fields = {field_of(cell) for cell in header}
        if set(REQUIRED_COLUMNS) <= fields or len(workbook.worksheets) == 1:
            return header, rows, sheet.title
        missing = [DISPLAY_NAMES[f] for f in REQUIRED_COLUMNS if f not in fields]
        lacking.append(f"'{sheet.title}' lacks {', '.join(missing)}")
    if not sheets_seen:
        raise TableError("the workbook has no worksheets")
    if not lacking:
        raise TableError(f"the workbook is empty: no sheet holds any cells (sheets: {', '.join(sheets_seen)})")
    raise TableError("no sheet has all the required columns Name, RT, Volume and Anchor (" + "; ".join(lacking) + ")")


def _sheet_rows(sheet) -> Iterator[list[str]]:
    """A sheet's rows as text; a damaged sheet found while streaming is a TableError."""
    try:
        for values in sheet.iter_rows(values_only=True):
            cells = list(map(_cell_text, values))
            while cells and not cells[-1]:  # read-only sheets pad rows to the sheet's declared width
                cells.pop()
            yield cells
    except TableError:
        raise
    except Exception as exc:  # a damaged sheet surfaces as XML, zip or value errors
        if _refused_xml(exc):
            raise TableError(_ENTITIES_REFUSED) from None
        raise TableError(
            f"cannot read sheet '{sheet.title}' of the Excel workbook ({type(exc).__name__}: {exc}); "
            "is it a valid .xlsx file?"
        ) from None


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
    mapping: dict[str, str] | None = None,
) -> RawTable:
    if len(header) > MAX_COLUMNS:
        raise TableError(
            f"the header has {len(header):,} columns; at most {MAX_COLUMNS:,} are read. "
            "Export only the columns the analysis needs (Name, RT, Volume, Log P, Anchor and those to keep)"
        )
    _check_cells(header, 0)
    header = [cell.strip() for cell in header]
    field_index, extras, notices = _map_header(header, delimiter, mapping or {})
    required_positions = sorted(field_index.items(), key=lambda item: item[1])
    width = len(header)
    multiline_extras: dict[int, list[int]] = {}
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
        if len(record) > MAX_COLUMNS:
            raise TableError(
                f"row {number} has {len(record):,} cells; at most {MAX_COLUMNS:,} columns are read "
                "(stray delimiters at the end of the line?)"
            )
        _check_cells(record, number)
        if type(record) is _SpanningRecord:
            _check_line_breaks(record, number, required_positions, width, delimiter or ",", multiline_extras)
        if len(record) < width:
            record = record + [""] * (width - len(record))
        elif len(record) > width:
            first = next((i for i in range(width, len(record)) if record[i].strip()), None)
            if first is not None:
                row_issues.append(
                    RowIssue(
                        number,
                        f"column {first + 1}",
                        record[first],
                        f"the row has {len(record)} cells but the header has {width}; "
                        "a stray delimiter or an unquoted value?",
                    )
                )
            record = record[:width]
        records.append(record)
        row_numbers.append(number)
    if not records:
        raise TableError("the table has a header but no data rows")
    extras = [(name, index) for name, index in extras if name or any(r[index].strip() for r in records)]
    extras = _output_names(extras, notices)
    if blank_rows:
        notices.append(f"{blank_rows} blank row{'s' if blank_rows > 1 else ''} ignored")
    for index, numbers in multiline_extras.items():
        shown = ", ".join(map(str, numbers[:5])) + (" ..." if len(numbers) > 5 else "")
        notices.append(
            f"column '{header[index]}' has values spanning several lines (rows {shown}); "
            "check that no quote character is left unpaired"
        )
    return RawTable(
        columns=list(INPUT_FIELDS) + [name for name, _ in extras],
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
        mapping=dict(mapping or {}),
    )


def _check_cells(record: list[str], number: int) -> None:
    if record and max(map(len, record)) > MAX_CELL_CHARS:
        column = next(i for i, cell in enumerate(record) if len(cell) > MAX_CELL_CHARS)
        where = "the header" if number == 0 else f"row {number}"
        raise TableError(
            f"{where}, column {column + 1}: a cell holds {len(record[column]):,} characters; "
            f"at most {MAX_CELL_CHARS:,} are read (the most a spreadsheet cell holds)"
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
        "valid",
        "invalid_reason",
        *INPUT_FIELDS,
    }
)


def _check_line_breaks(
    record: list[str],
    number: int,
    required: list[tuple[str, int]],
    width: int,
    delimiter: str,
    multiline_extras: dict[int, list[int]],
) -> None:
    """Line breaks and delimiters inside a required cell mean an unpaired quote merged rows of the file."""
    for field, index in required:
        cell = record[index].strip() if index < len(record) else ""
        if ("\n" in cell or "\r" in cell) and delimiter in cell:
            raise TableError(
                f"row {number}: the {DISPLAY_NAMES[field]} cell runs over several lines of the file, so a quote "
                '(") without its partner has merged rows; remove the stray quote'
            )
    required_indexes = {index for _, index in required}
    for index, cell in enumerate(record[:width]):
        if index not in required_indexes and ("\n" in cell or "\r" in cell):
            multiline_extras.setdefault(index, []).append(number)


def _output_names(extras: list[tuple[str, int]], notices: list[str]) -> list[tuple[str, int]]:
    """Give every kept extra column a unique output name that no result column uses."""
    taken = {name for name, _ in extras if name}
    named = []
    for name, index in extras:
        if name and name.lower() not in RESERVED_OUTPUT_NAMES:
            named.append((name, index))
            continue
        base = f"{name} (input)" if name else f"column_{index + 1}"
        output, suffix = base, 2
        while output in taken or output.lower() in RESERVED_OUTPUT_NAMES:
            output, suffix = f"{base} {suffix}", suffix + 1
        taken.add(output)
        if name:
            notices.append(f"input column '{name}' renamed to '{output}' to keep it apart from the result column")
        named.append((output, index))
    return named


def _map_header(header: list[str], delimiter: str | None, mapping: dict[str, str]):
    field_of = _field_finder(mapping)
    field_index: dict[str, int] = {}
    extras: list[tuple[str, int]] = []
    notices: list[str] = []
    seen_extra: dict[str, int] = {}
    for index, cell in enumerate(header):
        field = field_of(cell)
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
        extras.append((cell, index))
    for field, column in mapping.items():
        if field not in field_index:
            found = ", ".join(repr(c) for c in header[:12]) + (" ..." if len(header) > 12 else "")
            raise TableError(
                f"the column mapping takes {DISPLAY_NAMES[field]} from column {column!r}, which the file does not "
                f"have (found {found})"
            )
    missing = [DISPLAY_NAMES[f] for f in REQUIRED_COLUMNS if f not in field_index]
    if missing:
        found = ", ".join(repr(c) for c in header[:8]) + (" ..." if len(header) > 8 else "")
        hint = ""
        if len(header) == 1 and any(ch in header[0] for ch in "|:, ;\t"):
            hint = " The header looks like a single column: separate columns with commas, semicolons or tabs."
        raise TableError(
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found {found}).{hint}"
        )
    if "log_p" not in field_index:
        notices.append(NO_LOG_P_NOTICE)
    return field_index, extras, notices
