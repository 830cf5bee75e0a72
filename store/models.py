"""Tables: uploads, jobs and their events, and each finished job's results."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JobStatus(enum.StrEnum):
    """Where a job stands; members are strings, so they compare equal to the stored text."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_STATUSES = tuple(status.value for status in JobStatus)
TERMINAL_STATUSES = tuple(status.value for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """A moment in UTC on every backend: written as UTC, read back time-zone aware.

    PostgreSQL keeps the zone (`timestamptz`); SQLite keeps naive text, which this type reads
    back as UTC, so no caller repairs what it gets. A naive value is refused when written: which
    zone it meant cannot be known.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a time without a time zone cannot be stored: {value.isoformat()}")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012 - read by SQLAlchemy


class Upload(Base):
    """A file as received: bytes, name, size and SHA-256."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # What the upload page holds between staging and Analyze: random, so it cannot be guessed
    key: Mapped[str | None] = mapped_column(String(64), unique=True)


class Job(Base):
    """One analysis of one upload with one set of parameters, and where it stands."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="RESTRICT"), index=True)
    parameters: Mapped[dict] = mapped_column(JSON)
    # Which column is which ({field: column}) when the upload's names are not the usual ones
    input_mapping: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    progress_percent: Mapped[int] = mapped_column(Integer, default=0)
    progress_step: Mapped[str] = mapped_column(String(32), default="queued")
    progress_message: Mapped[str] = mapped_column(Text, default="")
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    notify_email: Mapped[str | None] = mapped_column(String(320))
    # Who submitted it (None: submitted in single-user mode, or the account was removed)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    notified_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]


class JobEvent(Base):
    """Every status change and progress step of a job, numbered in order."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_events_job_id_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    percent: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobResult(Base):
    """Per-run outcome of a succeeded job: summary, metrics, parameters, provenance, rule tables."""

    __tablename__ = "job_results"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    summary: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON)
    parameters: Mapped[dict] = mapped_column(JSON)
    provenance: Mapped[dict] = mapped_column(JSON)
    extra_columns: Mapped[list] = mapped_column(JSON)
    fragments: Mapped[dict] = mapped_column(JSON)
    oacetylation: Mapped[dict] = mapped_column(JSON)
    isomer_pairs: Mapped[dict] = mapped_column(JSON)
    invalid_rows: Mapped[list] = mapped_column(JSON)
    logp_checks: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ResultModel(Base):
    """One fitted (or not fitted) model of a job, with its report."""

    __tablename__ = "result_models"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    loo_rmsep: Mapped[float | None] = mapped_column(Float)
    report: Mapped[dict] = mapped_column(JSON)


class ResultRow(Base):
    """One input row of a finished job with every per-row field of the analysis."""

    __tablename__ = "result_rows"
    __table_args__ = (Index("ix_result_rows_job_id_status_row", "job_id", "status", "row"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    rt: Mapped[float | None] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float)
    log_p: Mapped[float | None] = mapped_column(Float)
    anchor: Mapped[bool | None] = mapped_column(Boolean)
    extras: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    predicted_rt: Mapped[float | None] = mapped_column(Float)
    pi_low: Mapped[float | None] = mapped_column(Float)
    pi_high: Mapped[float | None] = mapped_column(Float)
    residual: Mapped[float | None] = mapped_column(Float)
    studentized_residual: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    q_value: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list] = mapped_column(JSON)
    fragment_of: Mapped[int | None] = mapped_column(Integer)
    merged_volume: Mapped[float | None] = mapped_column(Float)
    isomer_group: Mapped[str | None] = mapped_column(Text)
    series: Mapped[int | None] = mapped_column(Integer)
    main_peak_row: Mapped[int | None] = mapped_column(Integer)
    offset_from_main: Mapped[float | None] = mapped_column(Float)
    volume_fraction: Mapped[float | None] = mapped_column(Float)
    judged_series: Mapped[int | None] = mapped_column(Integer)
    var_residual: Mapped[float | None] = mapped_column(Float)
    var_parameter: Mapped[float | None] = mapped_column(Float)
    var_head: Mapped[float | None] = mapped_column(Float)
    var_prefix: Mapped[float | None] = mapped_column(Float)
    var_species: Mapped[float | None] = mapped_column(Float)
    var_extrapolation: Mapped[float | None] = mapped_column(Float)
    var_isomer: Mapped[float | None] = mapped_column(Float)
    var_series: Mapped[float | None] = mapped_column(Float)
    canonical_name: Mapped[str | None] = mapped_column(Text)
    head: Mapped[str | None] = mapped_column(String(8))
    prefix: Mapped[str | None] = mapped_column(String(128))
    isomer: Mapped[str | None] = mapped_column(String(8))
    sialic: Mapped[int | None] = mapped_column(Integer)
    neutral: Mapped[int | None] = mapped_column(Integer)
    hex: Mapped[int | None] = mapped_column(Integer)
    hexnac: Mapped[int | None] = mapped_column(Integer)
    dhex: Mapped[int | None] = mapped_column(Integer)
    neuac: Mapped[int | None] = mapped_column(Integer)
    neugc: Mapped[int | None] = mapped_column(Integer)
    oac: Mapped[int | None] = mapped_column(Integer)
    total_sugars: Mapped[int | None] = mapped_column(Integer)
    carbons: Mapped[int | None] = mapped_column(Integer)
    double_bonds: Mapped[int | None] = mapped_column(Integer)
    oxygen: Mapped[int | None] = mapped_column(Integer)


class Role(enum.StrEnum):
    """What an account may do: every job and the users (admin), its own and its group's jobs
    (analyst), or only read (viewer)."""

    ADMIN = "admin"
    ANALYST = "analyst"
    VIEWER = "viewer"


ROLES = tuple(role.value for role in Role)


class User(Base):
    """An account: a name, an argon2 password hash, a role and an optional group."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default=Role.ANALYST)
    group_name: Mapped[str | None] = mapped_column(String(64), index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A personal API token: only the SHA-256 of the token is kept (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class AuditEvent(Base):
    """A state change someone made: who (name kept even if the account goes), what, to what, from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    address: Mapped[str | None] = mapped_column(String(64))


# Parents before children: the order for copying and loading, reversed for deleting.
TABLES_IN_DEPENDENCY_ORDER = (
    "users",
    "api_tokens",
    "uploads",
    "jobs",
    "job_events",
    "job_results",
    "result_models",
    "result_rows",
    "audit_events",
)
