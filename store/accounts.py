"""Accounts and personal API tokens: who may sign in, with which role and group.

Passwords are hashed with argon2id (argon2-cffi's defaults, memory-hard); a hash made with
older parameters is replaced at the next successful sign-in. API tokens are 32 random bytes,
shown once; only their SHA-256 is stored (a token is not guessable, so a fast hash suffices to
look it up). Every change is one transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from store.db import Database
from store.models import ROLES, ApiToken, Role, User, utcnow

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
GROUP = USERNAME
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything; a bound keeps a sign-in request cheap
TOKEN_PREFIX = "rtc_"
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A refused account change, with a message for the operator or the user."""


@dataclasses.dataclass(frozen=True)
class Account:
    """An account as the rest of the app sees it (never the password hash)."""

    id: int | None  # None: the single user of an install without sign-in
    username: str
    role: str
    group: str | None
    disabled: bool

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def may_write(self) -> bool:
        """Submit, cancel, retry, delete: everyone but viewers."""
        return self.role != Role.VIEWER


# Who acts when sign-in is off (AUTH_REQUIRED=false on a laptop): one user who may do anything.
SINGLE_USER = Account(None, "local", Role.ADMIN, None, False)


def _account(user: User) -> Account:
    return Account(user.id, user.username, user.role, user.group_name, user.disabled)


def _user_named(session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def _existing_user(session, username: str) -> User:
    user = _user_named(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}")
    return user


def _check_username(username: str) -> str:
    if not USERNAME.fullmatch(username or ""):
        raise AccountError("a user name is 1–64 letters, digits or . _ @ - (starting with a letter or digit)")
    return username


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def _check_group(group: str | None) -> str | None:
    if group in (None, ""):
        return None
    if not GROUP.fullmatch(group):
        raise AccountError("a group name is 1–64 letters, digits or . _ @ -")
    return group


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def add_user(
    db: Database, username: str, password: str, *, role: str = Role.ANALYST, group: str | None = None
) -> Account:
    user = User(
        username=_check_username(username),
        password_hash=_hash_password(password),
        role=_check_role(role),
        group_name=_check_group(group),
        disabled=False,
    )
    taken = AccountError(f"a user named {username!r} exists already")
    try:
        with db.transaction() as session:
            if _user_named(session, username) is not None:
                raise taken
            session.add(user)
            session.flush()
            return _account(user)
    except IntegrityError:  # the same name added at the same moment by someone else
        if get_account(db, username) is not None:
            raise taken from None
        raise


def get_account(db: Database, username: str) -> Account | None:
    with db.session() as session:
        user = _user_named(session, username)
        return _account(user) if user else None


def session_stamp(user: User) -> str:
    """Changes when the password does: a session made before a password change stops working."""
    return f"{user.password_changed_at.timestamp():.6f}"


def account_for_session(db: Database, user_id: int, stamp: str) -> Account | None:
    """The account a sign-in session names, if it is enabled and its password unchanged since."""
    with db.session() as session:
        user = session.get(User, user_id)
    if user is None or user.disabled or session_stamp(user) != stamp:
        return None
    return _account(user)


def stamp_of(db: Database, user_id: int) -> str | None:
    with db.session() as session:
        user = session.get(User, user_id)
    return session_stamp(user) if user else None


def count_admins(db: Database) -> int:
    with db.session() as session:
        return len(
            session.execute(select(User.id).where(User.role == Role.ADMIN, User.disabled.is_(False))).scalars().all()
        )


def list_accounts(db: Database) -> list[Account]:
    with db.session() as session:
        return [_account(user) for user in session.execute(select(User).order_by(User.username)).scalars()]


def _change(db: Database, username: str, **values) -> Account:
    with db.transaction() as session:
        user = _existing_user(session, username)
        for name, value in values.items():
            setattr(user, name, value)
        session.flush()
        return _account(user)


def set_role(db: Database, username: str, role: str) -> Account:
    return _change(db, username, role=_check_role(role))


def set_group(db: Database, username: str, group: str | None) -> Account:
    return _change(db, username, group_name=_check_group(group))


def set_password(db: Database, username: str, password: str) -> Account:
    return _change(db, username, password_hash=_hash_password(password), password_changed_at=utcnow())


def set_disabled(db: Database, username: str, disabled: bool = True) -> Account:
    return _change(db, username, disabled=disabled)


def authenticate(db: Database, username: str, password: str) -> Account | None:
    """The account, if the name and password match and it is not disabled; otherwise None.

    An unknown name costs a hash verification too, so timing does not tell which names exist.
    """
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return None
    with db.session() as session:
        user = _user_named(session, username)
    stored = user.password_hash if user else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(stored):
        with db.transaction() as session:
            session.execute(update(User).where(User.id == user.id).values(password_hash=_hasher.hash(password)))
    return _account(user)


_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, username: str, label: str = "") -> tuple[int, str]:
    """A new token for the user: (its id, the token itself, which is not stored and shown once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        user = _existing_user(session, username)
        record = ApiToken(user_id=user.id, label=label[:128], token_hash=_token_digest(token))
        session.add(record)
        session.flush()
        return record.id, token


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    id: int | None  # None: the single user of an install without sign-in
    username: str
    label: str
    created_at: str
    last_used_at: str | None
    revoked: bool


def list_tokens(db: Database, username: str | None = None) -> list[TokenInfo]:
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if username is not None:
        query = query.where(User.username == username)
    with db.session() as session:
        return [
            TokenInfo(
                token.id,
                name,
                token.label,
                token.created_at.isoformat(),
                token.last_used_at.isoformat() if token.last_used_at else None,
                token.revoked_at is not None,
            )
            for token, name in session.execute(query).all()
        ]


def revoke_token(db: Database, token_id: int, *, username: str | None = None) -> None:
    """Revoke a live token; given a user name, only if the token is that account's."""
    condition = [ApiToken.id == token_id, ApiToken.revoked_at.is_(None)]
    if username is not None:
        condition.append(ApiToken.user_id.in_(select(User.id).where(User.username == username)))
    with db.transaction() as session:
        done = session.execute(update(ApiToken).where(*condition).values(revoked_at=utcnow()))
        if done.rowcount != 1:
            raise AccountError(f"no active token with id {token_id}")


# "last used" is kept to this resolution: a script's every request does not write the database
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def account_for_token(db: Database, token: str) -> Account | None:
    """The account a bearer token belongs to, if the token is live and the account enabled."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    with db.session() as session:  # a read: no write lock for every request a script makes
        found = session.execute(
            select(ApiToken.id, ApiToken.last_used_at, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None))
        ).one_or_none()
        if found is None or found[2].disabled:
            return None
        token_id, last_used, account = found[0], found[1], _account(found[2])
    now = utcnow()
    if last_used is None or now - last_used >= TOKEN_USE_RESOLUTION:
        with db.transaction() as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return account
