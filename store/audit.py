"""The audit trail: who submitted, cancelled, retried or deleted which job, who failed to sign in,
whose role changed. Rows are only ever added (and copied with the rest by dump/load)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from store.db import Database
from store.models import AuditEvent, utcnow

MAX_TARGET = 255


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: str
    actor: str
    action: str
    target: str
    detail: dict
    address: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def record(
    db: Database, *, actor: str, action: str, target: str = "", detail: dict | None = None, address: str | None = None
) -> None:
    with db.transaction() as session:
        session.add(
            AuditEvent(
                ts=utcnow(),
                actor=(actor or "anonymous")[:64],
                action=action[:32],
                target=(target or "")[:MAX_TARGET],
                detail=detail or {},
                address=(address or None) and address[:64],
            )
        )


def recent(db: Database, *, limit: int = 200, action: str | None = None, actor: str | None = None) -> list[AuditEntry]:
    """Newest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    with db.session() as session:
        return [
            AuditEntry(e.id, e.ts.isoformat(), e.actor, e.action, e.target, e.detail or {}, e.address)
            for e in session.execute(query).scalars()
        ]
