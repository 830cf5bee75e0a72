"""Which jobs an account may see, as one SQL condition every query of the web layer applies.

Admins see every job; analysts and viewers their own and those of their group's members (the
owner's group as it is now, so moving a user moves the jobs' audience with them). Jobs without
an owner (single-user mode) are visible to admins only once accounts are in use.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select

from store.accounts import Account
from store.models import Job, User


def visible_jobs(account: Account | None) -> ColumnElement[bool] | None:
    """The condition on `jobs` for what `account` may see; None when it may see everything."""
    if account is None or account.is_admin:
        return None
    mine = Job.owner_id == account.id
    if not account.group:
        return mine
    return or_(mine, Job.owner_id.in_(select(User.id).where(User.group_name == account.group)))
