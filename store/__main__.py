"""`python -m store`: upgrade, downgrade, copy, dump, load, cleanup, users, tokens and audit.

The database URL defaults to DATABASE_URL (settings.py); every command takes --url.
Exit codes: 0 success, 1 verification failed or the data could not be moved, 2 bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from settings import get_settings, redact
from store import accounts, audit
from store.db import Database
from store.jobs import cleanup_old_jobs
from store.migrate import current_revision, downgrade, head_revision, upgrade
from store.models import ROLES as ROLE_CHOICES
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

    users = commands.add_parser("users", help="accounts: add, list, disable, enable, set-role, set-group, set-password")
    user_commands = users.add_subparsers(dest="action", required=True)
    add = with_url(user_commands.add_parser("add", help="add an account (password from stdin, or asked twice)"))
    add.add_argument("name")
    add.add_argument("--role", choices=ROLE_CHOICES, default="analyst")
    add.add_argument("--group", help="the group whose jobs an analyst also sees")
    with_url(user_commands.add_parser("list", help="every account with its role, group and state"))
    for action, text in (("disable", "refuse sign-in and tokens"), ("enable", "allow sign-in again")):
        with_url(user_commands.add_parser(action, help=text)).add_argument("name")
    role = with_url(user_commands.add_parser("set-role", help="change an account's role"))
    role.add_argument("name")
    role.add_argument("role", choices=ROLE_CHOICES)
    group = with_url(user_commands.add_parser("set-group", help="change an account's group ('' for none)"))
    group.add_argument("name")
    group.add_argument("group")
    password = with_url(user_commands.add_parser("set-password", help="set a new password (stdin, or asked twice)"))
    password.add_argument("name")
    with_url(
        user_commands.add_parser(
            "ensure-admin", help="when no admin exists, add one from ADMIN_USERNAME and ADMIN_PASSWORD (Compose)"
        )
    )

    trail = with_url(commands.add_parser("audit", help="the audit trail, newest first"))
    trail.add_argument("--limit", type=int, default=50)
    trail.add_argument("--action", help="only this action (submit, cancel, retry, delete, sign_in_failed, ...)")
    trail.add_argument("--user", help="only what this account did")

    tokens = commands.add_parser("tokens", help="personal API tokens: create, list, revoke")
    token_commands = tokens.add_subparsers(dest="action", required=True)
    create = with_url(token_commands.add_parser("create", help="make a token for an account; printed once"))
    create.add_argument("name")
    create.add_argument("--label", default="", help="what the token is for")
    listing = with_url(token_commands.add_parser("list", help="tokens (never the tokens themselves)"))
    listing.add_argument("name", nargs="?")
    revoke = with_url(token_commands.add_parser("revoke", help="revoke a token by its id"))
    revoke.add_argument("id", type=int)
    return parser


def read_password(prompt: str = "password") -> str:
    """From a terminal: asked twice, not echoed. Otherwise the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"{prompt} again: ") != first:
            raise accounts.AccountError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except TransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    if args.command == "users":
        return _users(db, args)
    if args.command == "tokens":
        return _tokens(db, args)
    if args.command == "audit":
        for entry in audit.recent(db, limit=args.limit, action=args.action, actor=args.user):
            detail = " ".join(f"{k}={v}" for k, v in entry.detail.items())
            print(
                f"{entry.ts}  {entry.actor:20s} {entry.action:16s} {entry.target:44s} {entry.address or '-'}  {detail}"
            )
        return 0
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


OPERATOR = "operator (command line)"


def _users(db: Database, args: argparse.Namespace) -> int:
    if args.action == "add":
        account = accounts.add_user(db, args.name, read_password(), role=args.role, group=args.group)
        print(f"added {account.username} ({account.role}{', group ' + account.group if account.group else ''})")
        _audit(db, "user_added", account.username, role=account.role, group=account.group)
    elif args.action == "list":
        for account in accounts.list_accounts(db):
            state = "disabled" if account.disabled else "active"
            print(f"{account.username:24s} {account.role:8s} {account.group or '-':16s} {state}")
    elif args.action in ("disable", "enable"):
        account = accounts.set_disabled(db, args.name, args.action == "disable")
        print(f"{account.username} is {'disabled' if account.disabled else 'enabled'}")
        _audit(db, f"user_{args.action}d", account.username)
    elif args.action == "set-role":
        print(f"{accounts.set_role(db, args.name, args.role).username} is now {args.role}")
        _audit(db, "role_changed", args.name, role=args.role)
    elif args.action == "set-group":
        account = accounts.set_group(db, args.name, args.group)
        print(f"{account.username} is in group {account.group or '(none)'}")
        _audit(db, "group_changed", account.username, group=account.group)
    elif args.action == "set-password":
        print(f"new password set for {accounts.set_password(db, args.name, read_password('new password')).username}")
        _audit(db, "password_set", args.name)
    elif args.action == "ensure-admin":
        return _ensure_admin(db)
    return 0


def _ensure_admin(db: Database) -> int:
    if accounts.count_admins(db):
        print("an admin account exists; nothing to do")
        return 0
    name, password = os.environ.get("ADMIN_USERNAME", "").strip(), os.environ.get("ADMIN_PASSWORD", "")
    if not name or not password:
        print(
            "warning: no admin account exists and ADMIN_USERNAME/ADMIN_PASSWORD are not both set; "
            "the web server will refuse to start with sign-in required until one exists "
            "(python -m store users add NAME --role admin)",
            file=sys.stderr,
        )
        return 0
    account = accounts.add_user(db, name, password, role="admin")
    print(f"added the first admin account, {account.username}")
    _audit(db, "user_added", account.username, role="admin")
    return 0


def _audit(db: Database, action: str, target: str, **detail) -> None:
    audit.record(db, actor=OPERATOR, action=action, target=f"user {target}", detail=detail)


def _tokens(db: Database, args: argparse.Namespace) -> int:
    if args.action == "create":
        token_id, token = accounts.create_token(db, args.name, args.label)
        print(f"token {token_id} for {args.name} (shown once, keep it secret):", file=sys.stderr)
        print(token)
        _audit(db, "token_created", args.name, token=token_id)
    elif args.action == "list":
        for info in accounts.list_tokens(db, args.name):
            state = "revoked" if info.revoked else f"last used {info.last_used_at or 'never'}"
            print(f"{info.id:5d} {info.username:24s} {info.label or '-':24s} created {info.created_at}  {state}")
    elif args.action == "revoke":
        accounts.revoke_token(db, args.id)
        print(f"token {args.id} revoked")
        audit.record(db, actor=OPERATOR, action="token_revoked", target=f"token {args.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
