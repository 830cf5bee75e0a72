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
import itertools
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from defusedxml import DefusedXmlException

from analysis import derive, layouts
from analysis.anchor_rule import AnchorRule
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
MAPPING_OPTIONS = ("sample", "anchor_rule")  # choices a mapping may carry besides {field: column}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
HEADER_SEARCH_ROWS = 60  # how far down a recognised export's header may sit (MS-DIAL: row 5)
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
    skipped: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # (row, name, why) not analysed
    reading: dict = dataclasses.field(default_factory=dict)  # layout recognised and every choice made


def normalise_header(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def check_mapping(mapping: dict[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """{field: column} with fields as `name`, `rt`, ... or as displayed (`Name`, `Log P`, ...);
    given as a dict or as (field, column) pairs (a field given twice is refused). Two choices
    may come with it: `sample` (a sample's name, or `mean`) and `anchor_rule` (see
    analysis.anchor_rule)."""
    fields = {normalise_header(DISPLAY_NAMES[f]): f for f in INPUT_FIELDS}
    fields |= {f.replace("_", ""): f for f in INPUT_FIELDS}
    fields |= {option.replace("_", ""): option for option in MAPPING_OPTIONS}
    checked: dict[str, str] = {}
    pairs = mapping.items() if isinstance(mapping, dict) else (mapping or ())
    for key, column in pairs:
        field = fields.get(normalise_header(str(key)))
        if field is None:
            known = ", ".join(DISPLAY_NAMES[f] for f in INPUT_FIELDS)
            raise TableError(f"the column mapping names {key!r}, which is not a field (fields: {known})")
        label = DISPLAY_NAMES.get(field, field)
        if not isinstance(column, str) or not column.strip():
            raise TableError(
                f"the column mapping gives no {'value' if field in MAPPING_OPTIONS else 'column'} for {label}"
            )
        if field in checked:
            raise TableError(f"the column mapping gives {label} twice")
        checked[field] = column.strip()
    if "anchor_rule" in checked:
        AnchorRule.parse(checked["anchor_rule"])  # a rule that cannot be read is refused here
    return checked


def column_choices(mapping: dict[str, str]) -> dict[str, str]:
    """The {field: column} part of a mapping, without the sample and anchor-rule choices."""
    return {field: column for field, column in mapping.items() if field not in MAPPING_OPTIONS}


def _field_finder(mapping: dict[str, str]):
    """cell -> field: the mapped columns first; a mapped field is not guessed from aliases."""
    mapping = column_choices(mapping)
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
        header, rows, sheet, plan = _xlsx_rows(data, field_of)
        return _build(header, rows, filename, digest, len(data), "xlsx", None, sheet, max_rows, mapping, plan)
    if data.startswith(_OLE_MAGIC):
        raise UnsupportedFormatError("legacy .xls workbooks are not supported; save the sheet as .xlsx or CSV")
    if filename.lower().endswith(".xlsx"):
        raise UnsupportedFormatError("this is not a valid .xlsx workbook (an .xlsx file is a zip archive); re-save it")
    text = _decode(data)
    lines = _first_content_lines(text, HEADER_SEARCH_ROWS)
    if not lines:
        raise TableError("the file is empty (it holds only blank lines, delimiters or quotes)")
    delimiter = _sniff_delimiter(lines, field_of)
    found = _find_header(_text_records(text, delimiter))
    if found is None:
        raise TableError("the file is empty (it holds only blank lines, delimiters or quotes)")
    header, rows, plan = found
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
        plan,
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


def _first_content_lines(text: str, count: int) -> list[str]:
    """The first lines holding something other than whitespace, delimiters and quotes."""
    found = []
    for line in io.StringIO(text, newline=""):
        if not _BLANK_LINE.fullmatch(line):
            found.append(line.rstrip("\r\n"))
            if len(found) >= count:
                break
    return found


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


def _sniff_delimiter(lines: list[str], field_of) -> str:
    """Pick the delimiter that turns a line near the top into a recognised export's header, or
    else into the most recognised column names (then the most cells)."""
    best, best_key = ",", (-1, -1, -1)
    for delimiter in DELIMITERS:
        for line in lines:
            try:
                cells = next(csv.reader([line], delimiter=delimiter))
            except (csv.Error, StopIteration):  # e.g. a line longer than any field may be; reading reports it
                continue
            known = sum(field_of(cell) is not None for cell in cells)
            recognised = int(len(cells) > 1 and layouts.plan_for(cells) is not None)
            candidate = (recognised, known, len(cells))
            if candidate > best_key:
                best, best_key = delimiter, candidate
    return best


def _is_blank_record(record: list[str]) -> bool:
    return all(_BLANK_LINE.fullmatch(cell) for cell in record)


def _find_header(records: Iterable[list[str]]):
    """(header, the rows under it, the layout's plan or None), or None for an empty table.

    A recognised export's header may sit below rows of its own (MS-DIAL's file metadata,
    LipidSearch's `#` declarations); any other table's header is its first non-blank row."""
    iterator = iter(records)
    buffered: list[list[str]] = []
    preamble: list[list[str]] = []
    for record in iterator:
        if not buffered and _is_blank_record(record):
            continue
        buffered.append(record)
        if _is_blank_record(record):
            continue
        plan = layouts.plan_for(record, preamble) if len(record) > 1 else None
        if plan is not None:
            return record, iterator, plan
        preamble.append(record)
        if len(preamble) >= HEADER_SEARCH_ROWS:
            break
    if not buffered:
        return None
    return buffered[0], itertools.chain(buffered[1:], iterator), None


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


def _xlsx_rows(data: bytes, field_of) -> tuple[list[str], Iterator[list[str]], str, layouts.Plan | None]:
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
        found = _find_header(_sheet_rows(sheet))
        if found is None:
            continue
        header, rows, plan = found
        fields = {field_of(cell) for cell in header}
        if plan is not None or set(REQUIRED_COLUMNS) <= fields or len(workbook.worksheets) == 1:
            return header, rows, sheet.title, plan
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
    plan: layouts.Plan | None = None,
) -> RawTable:
    mapping = mapping or {}
    if len(header) > MAX_COLUMNS:
        raise TableError(
            f"the header has {len(header):,} columns; at most {MAX_COLUMNS:,} are read. "
            "Export only the columns the analysis needs (Name, RT, Volume, Log P, Anchor and those to keep)"
        )
    _check_cells(header, 0)
    header = [cell.strip() for cell in header]
    if plan is not None:
        plan = derive.apply_choices(plan, header, mapping)
        derive.check_plan(plan, header)
        field_index, extras, notices = {}, [], []
        required_positions = sorted(
            (field, source) for field, source in (("name", plan.name[0]), ("rt", plan.rt)) if isinstance(source, int)
        )
    else:
        field_index, extras, notices = _map_header(header, delimiter, mapping)
        required_positions = sorted(field_index.items(), key=lambda item: item[1])
    records, row_numbers, row_issues, blank_rows, multiline_extras = _read_records(
        rows, len(header), max_rows, delimiter, required_positions
    )
    if not records:
        raise TableError("the table has a header but no data rows")
    skipped: list[tuple[int, str, str]] = []
    if plan is not None:
        derived = derive.derive(
            plan, header, records, row_numbers, sample=mapping.get("sample"), decimal_comma=delimiter in (";", "\t")
        )
        if not derived.records:
            reasons = "; ".join(f"{v['count']:,} {k}" for k, v in derived.reading["skipped"].items())
            raise TableError(f"recognised as {plan.label}, but no row holds a ganglioside ({reasons})")
        records, row_numbers, skipped = derived.records, derived.row_numbers, derived.skipped
        row_issues = sorted(row_issues + derived.row_issues, key=lambda issue: issue.row)
        field_index, extras, notices = derived.field_index, derived.kept, derived.notices
        reading = derived.reading
        if "log_p" not in field_index:
            notices.append(NO_LOG_P_NOTICE)
    else:
        if mapping.get("sample") not in (None, "", layouts.MEAN):
            raise TableError(
                f"sample {mapping['sample']!r}: this table is not a recognised multi-sample export; "
                "map Volume to the sample's column instead"
            )
        rule = AnchorRule.parse(mapping.get("anchor_rule"))
        if rule.kind != "flag":
            row_issues = sorted(
                row_issues + _apply_anchor_rule(rule, records, row_numbers, field_index["anchor"], header),
                key=lambda issue: issue.row,
            )
        reading = _native_reading(header, field_index, rule)
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
        mapping=dict(mapping),
        skipped=skipped,
        reading=reading,
    )


def _read_records(rows, width, max_rows, delimiter, required_positions):
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
    return records, row_numbers, row_issues, blank_rows, multiline_extras


def _apply_anchor_rule(rule: AnchorRule, records, row_numbers, position: int, header) -> list[RowIssue]:
    """Replace each Anchor cell by the rule's T/F; a cell the rule cannot judge is a row problem."""
    issues = []
    for record, row in zip(records, row_numbers, strict=True):
        verdict = rule.decide(record[position])
        if verdict is None:
            issues.append(RowIssue(row, "Anchor", record[position], f"'{header[position]}': {rule.expected()}"))
            verdict = "F"
        record[position] = verdict
    return issues


def _native_reading(header: list[str], field_index: dict[str, int], rule: AnchorRule) -> dict:
    columns = {DISPLAY_NAMES[f]: header[i] for f, i in field_index.items() if f != "anchor"}
    columns["Anchor"] = rule.describe(header[field_index["anchor"]])
    return {"layout": "table", "label": "a peak table", "columns": columns, "anchor_rule": rule.text, "samples": []}


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
    for field, column in column_choices(mapping).items():
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
        elif len(header) > 1:
            hint = (
                " The layout is not one the reader recognises (MS-DIAL, MZmine, LipidSearch, Skyline): "
                "say which column is which with a column mapping (docs/inputs.md)."
            )
        raise TableError(
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (found {found}).{hint}"
        )
    if "log_p" not in field_index:
        notices.append(NO_LOG_P_NOTICE)
    return field_index, extras, notices
