"""Accounts and API tokens in the database, and the operator commands that manage them."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from store import accounts
from store.__main__ import main
from store.models import ApiToken, User

PASSWORD = "correct horse battery"


def test_a_password_is_stored_as_an_argon2id_hash_and_checked_against_it(database):
    account = accounts.add_user(database, "ana", PASSWORD, role="analyst", group="lipids")
    with database.session() as session:
        stored = session.execute(select(User.password_hash).where(User.id == account.id)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate(database, "ana", PASSWORD) == account
    assert accounts.authenticate(database, "ana", PASSWORD + "!") is None
    assert accounts.authenticate(database, "nobody", PASSWORD) is None
    assert accounts.authenticate(database, "ana", "x" * (accounts.MAX_PASSWORD_LENGTH + 1)) is None


@pytest.mark.parametrize(
    "name, password, role, group, complaint",
    [
        ("", PASSWORD, "analyst", None, "user name"),
        ("a b", PASSWORD, "analyst", None, "user name"),
        ("ana", "short", "analyst", None, "at least 10"),
        ("ana", PASSWORD, "owner", None, "unknown role"),
        ("ana", PASSWORD, "analyst", "two words", "group name"),
    ],
)
def test_bad_account_details_are_refused_and_nothing_is_stored(database, name, password, role, group, complaint):
    with pytest.raises(accounts.AccountError, match=complaint):
        accounts.add_user(database, name, password, role=role, group=group)
    assert accounts.list_accounts(database) == []


def test_a_name_is_taken_once(database):
    accounts.add_user(database, "ana", PASSWORD)
    with pytest.raises(accounts.AccountError, match="exists already"):
        accounts.add_user(database, "ana", PASSWORD + "2")
    assert len(accounts.list_accounts(database)) == 1


def test_a_disabled_account_cannot_sign_in_or_use_its_tokens_until_enabled(database):
    accounts.add_user(database, "ana", PASSWORD)
    _, token = accounts.create_token(database, "ana", "script")
    accounts.set_disabled(database, "ana", True)
    assert accounts.authenticate(database, "ana", PASSWORD) is None
    assert accounts.account_for_token(database, token) is None
    accounts.set_disabled(database, "ana", False)
    assert accounts.authenticate(database, "ana", PASSWORD).username == "ana"
    assert accounts.account_for_token(database, token).username == "ana"


def test_a_token_is_stored_only_as_its_hash_and_stops_working_when_revoked(database):
    accounts.add_user(database, "ana", PASSWORD, role="viewer")
    token_id, token = accounts.create_token(database, "ana", "nightly export")
    with database.session() as session:
        stored = session.execute(select(ApiToken.token_hash).where(ApiToken.id == token_id)).scalar_one()
    assert token not in stored and len(stored) == 64
    account = accounts.account_for_token(database, token)
    assert (account.username, account.role) == ("ana", "viewer")
    (info,) = accounts.list_tokens(database, "ana")
    assert info.label == "nightly export" and info.last_used_at is not None and not info.revoked
    assert accounts.account_for_token(database, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    accounts.revoke_token(database, token_id)
    assert accounts.account_for_token(database, token) is None
    with pytest.raises(accounts.AccountError, match="no active token"):
        accounts.revoke_token(database, token_id)


def test_a_tokens_last_use_is_written_at_most_once_a_minute(database, monkeypatch):
    accounts.add_user(database, "ana", PASSWORD)
    _, token = accounts.create_token(database, "ana")
    accounts.account_for_token(database, token)
    (first,) = accounts.list_tokens(database, "ana")
    accounts.account_for_token(database, token)  # within the minute: a read only
    assert accounts.list_tokens(database, "ana")[0].last_used_at == first.last_used_at
    monkeypatch.setattr(accounts, "TOKEN_USE_RESOLUTION", timedelta(0))
    accounts.account_for_token(database, token)
    assert accounts.list_tokens(database, "ana")[0].last_used_at > first.last_used_at


def test_role_group_and_password_changes(database):
    accounts.add_user(database, "ana", PASSWORD)
    assert accounts.set_role(database, "ana", "admin").is_admin
    assert accounts.set_group(database, "ana", "lipids").group == "lipids"
    assert accounts.set_group(database, "ana", "").group is None
    accounts.set_password(database, "ana", "a new long password")
    assert accounts.authenticate(database, "ana", PASSWORD) is None
    assert accounts.authenticate(database, "ana", "a new long password") is not None
    with pytest.raises(accounts.AccountError, match="no user named"):
        accounts.set_role(database, "nobody", "viewer")


def run_cli(monkeypatch, capsys, url: str, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main([*argv, "--url", url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_operator_commands_manage_accounts_and_tokens(database, monkeypatch, capsys):
    url = database.url
    code, out, _ = run_cli(monkeypatch, capsys, url, "users", "add", "ana", "--role", "admin", stdin=PASSWORD + "\n")
    assert code == 0 and "added ana (admin)" in out
    code, out, _ = run_cli(monkeypatch, capsys, url, "users", "add", "bo", "--group", "lipids", stdin=PASSWORD + "\n")
    assert code == 0 and "group lipids" in out
    code, out, _ = run_cli(monkeypatch, capsys, url, "users", "list")
    assert [line.split() for line in out.splitlines()] == [
        ["ana", "admin", "-", "active"],
        ["bo", "analyst", "lipids", "active"],
    ]
    assert run_cli(monkeypatch, capsys, url, "users", "set-role", "bo", "viewer")[0] == 0
    assert run_cli(monkeypatch, capsys, url, "users", "disable", "bo")[0] == 0
    assert accounts.get_account(database, "bo") == accounts.Account(2, "bo", "viewer", "lipids", True)
    code, out, err = run_cli(monkeypatch, capsys, url, "tokens", "create", "ana", "--label", "cron")
    token = out.strip()
    assert code == 0 and token.startswith(accounts.TOKEN_PREFIX) and "shown once" in err
    assert accounts.account_for_token(database, token).username == "ana"
    code, out, _ = run_cli(monkeypatch, capsys, url, "tokens", "list")
    assert token not in out and "cron" in out
    assert run_cli(monkeypatch, capsys, url, "tokens", "revoke", "1")[0] == 0
    assert accounts.account_for_token(database, token) is None
    code, _, _ = run_cli(monkeypatch, capsys, url, "users", "set-password", "ana", stdin="another long one\n")
    assert code == 0 and accounts.authenticate(database, "ana", "another long one") is not None


@pytest.mark.parametrize(
    "argv, stdin, complaint",
    [
        (("users", "add", "ana"), "short\n", "at least 10"),
        (("users", "add", "ana", "x"), "", None),  # argparse: an extra argument
        (("users", "set-role", "nobody", "viewer"), "", "no user named 'nobody'"),
        (("tokens", "create", "nobody"), "", "no user named 'nobody'"),
        (("tokens", "revoke", "99"), "", "no active token"),
    ],
)
def test_operator_command_errors_are_one_line_and_change_nothing(database, monkeypatch, capsys, argv, stdin, complaint):
    try:
        code, _, err = run_cli(monkeypatch, capsys, database.url, *argv, stdin=stdin)
    except SystemExit as exc:  # argparse's own usage error
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    if complaint:  # one line of our own; argparse prints its usage instead
        assert err.startswith("error: ") and err.count("\n") == 1 and complaint in err
    assert accounts.list_accounts(database) == []
