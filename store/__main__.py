"""`python -m store`: upgrade, downgrade, copy, dump, load and cleanup.

The database URL defaults to DATABASE_URL (settings.py); every command takes --url.
Exit codes: 0 success, 1 verification failed or the data could not be moved, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from settings import get_settings, redact
from store.db import Database
from store.jobs import cleanup_old_jobs
from store.migrate import current_revision, downgrade, head_revision, upgrade
from store.transfer import TransferError, copy_database, dump_database, load_database


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m store", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_url(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--url", help="database URL (default: DATABASE_URL)")
        return sub

    with_url(commands.add_parser("upgrade", help="migrate the schema to the newest revision"))
    down = with_url(commands.add_parser("downgrade", help="migrate the schema down"))
    down.add_argument("revision", nargs="?", default="-1", help="target revision (default: one step down)")
    with_url(commands.add_parser("revision", help="print the schema revision of the database"))

    copy = commands.add_parser("copy", help="copy every table to another database and verify it")
    copy.add_argument("source", metavar="SRC_URL")
    copy.add_argument("destination", metavar="DST_URL")
    copy.add_argument("--force", action="store_true", help="replace a destination that already holds data")
    copy.add_argument("--batch-size", type=int, default=5000)

    dump = with_url(commands.add_parser("dump", help="write a portable, versioned backup file"))
    dump.add_argument("file")
    load = with_url(commands.add_parser("load", help="load a backup file into an empty database"))
    load.add_argument("file")
    load.add_argument("--force", action="store_true", help="replace a database that already holds data")

    cleanup = with_url(commands.add_parser("cleanup", help="delete finished jobs older than a number of days"))
    cleanup.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except TransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: database problem: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1


def _database(url: str | None) -> Database:
    return Database(url or get_settings().database_url)


def _run(args: argparse.Namespace) -> int:
    if args.command == "copy":
        source, destination = Database(args.source), Database(args.destination)
        print(f"copying {redact(args.source)} → {redact(args.destination)}")
        report = copy_database(
            source,
            destination,
            force=args.force,
            batch=args.batch_size,
            on_batch=lambda table, n: print(f"  {table}: {n:,}", end="\r", flush=True),
        )
        print("\n".join(["verified:", *report.lines()]))
        return 0
    db = _database(args.url)
    if args.command == "upgrade":
        upgrade(db)
        print(f"{redact(db.url)} is at schema revision {current_revision(db)}")
    elif args.command == "downgrade":
        downgrade(db, args.revision)
        print(f"{redact(db.url)} is at schema revision {current_revision(db) or 'base (empty)'}")
    elif args.command == "revision":
        print(f"{current_revision(db) or 'none'} (newest: {head_revision()})")
    elif args.command == "dump":
        report = dump_database(db, args.file)
        print("\n".join([f"wrote {args.file}:", *report.lines()]))
    elif args.command == "load":
        report = load_database(db, args.file, force=args.force)
        print("\n".join([f"loaded {args.file} and verified:", *report.lines()]))
    elif args.command == "cleanup":
        removed = cleanup_old_jobs(db, older_than_days=args.older_than)
        print(f"deleted {removed} finished job{'s' if removed != 1 else ''} older than {args.older_than:g} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
