"""Move data between databases: copy (e.g. SQLite → PostgreSQL), and a portable dump/load backup.

Both write the destination in one transaction, so a failure part-way leaves it exactly as
it was, and both end by comparing row counts and a checksum of every table. Checksums are
computed over values in a canonical form (UTC ISO times, exact float text, sorted JSON,
a digest of binary content), so the same data gives the same checksum on either backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Table, delete, func, insert, select, text
from sqlalchemy.types import Float, LargeBinary, Uuid

from store.db import Database
from store.migrate import current_revision, head_revision, upgrade
from store.models import TABLES_IN_DEPENDENCY_ORDER, Base, UTCDateTime

BACKUP_FORMAT = "ganglioside-rt-check-backup"
BACKUP_VERSION = 1
DEFAULT_BATCH = 5_000


class TransferError(Exception):
    """The copy, dump or load could not be done; nothing was changed in the destination."""


@dataclass
class TableReport:
    rows: int
    checksum: str


@dataclass
class TransferReport:
    tables: dict[str, TableReport] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"{name:15s} {report.rows:10,d} rows  sha256 {report.checksum[:16]}…"
            for name, report in self.tables.items()
        ]


def tables() -> list[Table]:
    return [Base.metadata.tables[name] for name in TABLES_IN_DEPENDENCY_ORDER]


def _order(table: Table):
    return [column for column in table.primary_key.columns]


def canonical(value, column_type) -> object:
    """A JSON-ready value that is identical for the same data on SQLite and PostgreSQL."""
    if value is None:
        return None
    if isinstance(column_type, UTCDateTime):  # read back aware, in UTC
        return value.isoformat()
    if isinstance(column_type, LargeBinary):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(column_type, Uuid):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def decode(value, column_type) -> object:
    """Inverse of `canonical` for loading a backup."""
    if value is None:
        return None
    if isinstance(column_type, UTCDateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column_type, LargeBinary):
        return base64.b64decode(value)
    if isinstance(column_type, Uuid):
        return uuid.UUID(value)
    if isinstance(column_type, Float) and isinstance(value, str):
        return float(value)
    return value


def _row_digest(values: list) -> bytes:
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _canonical_rows(connection: Connection, table: Table, batch: int) -> Iterator[list]:
    types = [column.type for column in table.columns]
    result = connection.execution_options(yield_per=batch).execute(select(table).order_by(*_order(table)))
    for row in result:
        yield [canonical(value, kind) for value, kind in zip(row, types, strict=True)]


def table_report(connection: Connection, table: Table, batch: int = DEFAULT_BATCH) -> TableReport:
    digest = hashlib.sha256()
    count = 0
    for values in _canonical_rows(connection, table, batch):
        digest.update(_row_digest(values) + b"\n")
        count += 1
    return TableReport(count, digest.hexdigest())


def database_report(db: Database) -> TransferReport:
    with db.engine.connect() as connection:
        return TransferReport({table.name: table_report(connection, table) for table in tables()})


def is_empty(db: Database) -> bool:
    with db.engine.connect() as connection:
        return all(connection.execute(select(func.count()).select_from(t)).scalar_one() == 0 for t in tables())


def _prepare_destination(db: Database, force: bool) -> None:
    upgrade(db)
    if not force and not is_empty(db):
        raise TransferError(f"the destination {db.url.split('@')[-1]} already holds data; use --force to replace it")


def _clear(connection: Connection) -> None:
    for table in reversed(tables()):
        connection.execute(delete(table))


def _reset_sequences(connection: Connection) -> None:
    """After explicit ids were inserted, PostgreSQL's sequences must continue above them."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables():
        column = table.autoincrement_column  # a serial integer key, explicit or implied
        if column is not None:
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                )
            )


def copy_database(
    source: Database,
    destination: Database,
    *,
    force: bool = False,
    batch: int = DEFAULT_BATCH,
    on_batch: Callable[[str, int], None] | None = None,
) -> TransferReport:
    """Copy every table in dependency order and verify counts and checksums."""
    if current_revision(source) != head_revision():
        raise TransferError(
            f"the source is at schema revision {current_revision(source)}, not "
            f"{head_revision()}; run `python -m store upgrade` on it first"
        )
    _prepare_destination(destination, force)
    with source.engine.connect() as reader, destination.engine.begin() as writer:
        if force:
            _clear(writer)
        for table in tables():
            rows = reader.execution_options(yield_per=batch).execute(select(table).order_by(*_order(table)))
            copied = 0
            for chunk in rows.partitions(batch):
                writer.execute(insert(table), [dict(row._mapping) for row in chunk])
                copied += len(chunk)
                if on_batch:
                    on_batch(table.name, copied)
        _reset_sequences(writer)
    return _verify(database_report(source), database_report(destination))


def _verify(expected: TransferReport, actual: TransferReport) -> TransferReport:
    problems = [
        f"{name}: {expected.tables[name].rows} rows / {expected.tables[name].checksum[:12]} expected, "
        f"{actual.tables[name].rows} rows / {actual.tables[name].checksum[:12]} found"
        for name in expected.tables
        if expected.tables[name] != actual.tables[name]
    ]
    if problems:
        raise TransferError("verification failed: " + "; ".join(problems))
    return actual


def dump_database(db: Database, path: str | Path, *, batch: int = DEFAULT_BATCH) -> TransferReport:
    """Write a gzip file of JSON lines: a header, each table's rows, per-table checksums, an end mark."""
    revision = current_revision(db)
    if revision != head_revision():
        raise TransferError(f"the database is at schema revision {revision}; upgrade it before dumping")
    report = TransferReport()
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    # One snapshot for every table, so jobs finishing during the dump cannot mix states.
    isolation = "REPEATABLE READ" if db.engine.dialect.name == "postgresql" else None
    options = {"isolation_level": isolation} if isolation else {}
    with (
        db.engine.connect().execution_options(**options) as connection,
        gzip.open(partial, "wt", encoding="utf-8") as out,
    ):
        header = {
            "format": BACKUP_FORMAT,
            "version": BACKUP_VERSION,
            "schema_revision": revision,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "tables": list(TABLES_IN_DEPENDENCY_ORDER),
        }
        out.write(json.dumps(header) + "\n")
        for table in tables():
            out.write(json.dumps({"table": table.name, "columns": [c.name for c in table.columns]}) + "\n")
            digest, count = hashlib.sha256(), 0
            for values in _canonical_rows(connection, table, batch):
                line = _row_digest(values)
                digest.update(line + b"\n")
                out.write(line.decode() + "\n")
                count += 1
            report.tables[table.name] = TableReport(count, digest.hexdigest())
            out.write(json.dumps({"end_table": table.name, "rows": count, "checksum": digest.hexdigest()}) + "\n")
        out.write(json.dumps({"end": True}) + "\n")
    partial.replace(path)
    return report


def load_database(db: Database, path: str | Path, *, force: bool = False, batch: int = DEFAULT_BATCH) -> TransferReport:
    """Load a dump into an empty database (or, with force, replace its contents), all or nothing."""
    path = Path(path)
    if not path.is_file():
        raise TransferError(f"no such backup file: {path}")
    _prepare_destination(db, force)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source, db.engine.begin() as writer:
            if force:
                _clear(writer)
            report = _load_lines(writer, source, batch)
            _reset_sequences(writer)
    except (
        OSError,
        EOFError,
        StopIteration,
        zlib.error,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise TransferError(
            f"the backup {path.name} is truncated or corrupted ({type(exc).__name__}: {exc}); nothing was loaded"
        ) from None
    return _verify(report, database_report(db))


def _load_lines(writer: Connection, lines, batch: int) -> TransferReport:
    header = json.loads(next(lines))
    if header.get("format") != BACKUP_FORMAT:
        raise TransferError("this file is not a backup made by `python -m store dump`")
    if header.get("version") != BACKUP_VERSION:
        raise TransferError(
            f"backup format version {header.get('version')} is not supported "
            f"(this software reads version {BACKUP_VERSION})"
        )
    if header.get("schema_revision") != head_revision():
        raise TransferError(
            f"the backup is of schema revision {header.get('schema_revision')}, this software "
            f"uses {head_revision()}; load it with the matching version, then upgrade"
        )
    report = TransferReport()
    by_name = {table.name: table for table in tables()}
    for expected_name in TABLES_IN_DEPENDENCY_ORDER:
        opening = json.loads(next(lines))
        if opening.get("table") != expected_name:
            raise ValueError(f"expected table {expected_name}, found {opening}")
        table = by_name[expected_name]
        columns = [table.columns[name] for name in opening["columns"]]
        digest, count, pending = hashlib.sha256(), 0, []
        for line in lines:
            record = json.loads(line)
            if isinstance(record, dict):
                break
            digest.update(_row_digest(record) + b"\n")
            pending.append({c.name: decode(v, c.type) for c, v in zip(columns, record, strict=True)})
            count += 1
            if len(pending) == batch:
                writer.execute(insert(table), pending)
                pending = []
        else:
            raise ValueError(f"the file ends inside table {expected_name}")
        if pending:
            writer.execute(insert(table), pending)
        if (
            record.get("end_table") != expected_name
            or record.get("rows") != count
            or record.get("checksum") != digest.hexdigest()
        ):
            raise ValueError(f"table {expected_name} does not match its recorded count and checksum")
        report.tables[expected_name] = TableReport(count, digest.hexdigest())
    if json.loads(next(lines)) != {"end": True}:
        raise ValueError("the end mark is missing")
    return report
