"""The app's tables: portals, users' token chains and the binding history."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from b24app.extensions import db

# The width of a stored scope (``portals.scope``, ``user_tokens.scope``).
SCOPE_WIDTH = 512


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so naive values coming back are UTC by construction.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC; refuse naive datetimes, which would be ambiguous."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to what the database returns."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Portal(db.Model):  # type: ignore[name-defined]
    """One Bitrix24 portal the app was installed on, identified by its ``member_id``."""

    __tablename__ = "portals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), unique=True)
    domain: Mapped[str] = mapped_column(String(255))
    client_endpoint: Mapped[str] = mapped_column(String(512))
    # Fernet ciphertext: the only proof an uninstall event comes from Bitrix24.
    application_token_encrypted: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(SCOPE_WIDTH), default="")
    # The app's licence status on the portal as Bitrix24 reports it (F, D, T, P, L).
    status: Mapped[str] = mapped_column(String(8), default="")
    installer_user_id: Mapped[int | None] = mapped_column(Integer)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    tokens: Mapped[list[UserToken]] = relationship(
        back_populates="portal", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_installed(self) -> bool:
        """Whether the app is installed there now."""
        return self.installed_at is not None and self.uninstalled_at is None

    def __repr__(self) -> str:
        """Identify the portal without any secret."""
        return f"<Portal {self.id} {self.domain} installed={self.is_installed}>"


class UserToken(db.Model):  # type: ignore[name-defined]
    """One user's OAuth token chain on one portal, encrypted at rest."""

    __tablename__ = "user_tokens"
    __table_args__ = (UniqueConstraint("portal_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scope: Mapped[str] = mapped_column(String(SCOPE_WIDTH), default="")
    # Set when the OAuth server answered invalid_grant: the chain is dead and only the
    # user reopening the app (a fresh token pair) revives it.
    invalid_grant_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    portal: Mapped[Portal] = relationship(back_populates="tokens")

    @property
    def is_dead(self) -> bool:
        """Whether the chain can no longer be refreshed."""
        return self.invalid_grant_at is not None

    def __repr__(self) -> str:
        """Identify the chain without any secret."""
        return f"<UserToken portal={self.portal_id} user={self.user_id} dead={self.is_dead}>"


class BindingAction(enum.StrEnum):
    """What a user asked for."""

    BIND = "bind"
    UNBIND = "unbind"


class BindingOutcome(enum.StrEnum):
    """How an attempt ended."""

    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    REPLACED = "replaced"
    UNBOUND = "unbound"
    FAILED = "failed"


class BindingRecord(db.Model):  # type: ignore[name-defined]
    """One bind or unbind attempt and how it ended: the portal's history."""

    __tablename__ = "binding_records"
    __table_args__ = (
        Index("ix_binding_records_portal_created", "portal_id", "created_at"),
        Index("ix_binding_records_portal_order", "portal_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(BigInteger)
    owner_type_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The user's name as Bitrix24 gave it when acting (history outlives sessions).
    user_name: Mapped[str] = mapped_column(String(255), default="")
    # The order's number and the titles as they were when the attempt ran, for the history.
    order_number: Mapped[str | None] = mapped_column(String(100))
    owner_title: Mapped[str | None] = mapped_column(Text)
    # The owner a bind replaced (or an unbind removed: then it equals the owner).
    replaced_owner_type_id: Mapped[int | None] = mapped_column(Integer)
    replaced_owner_id: Mapped[int | None] = mapped_column(BigInteger)
    replaced_owner_title: Mapped[str | None] = mapped_column(Text)
    # An undo is itself an attempt; it names the attempt it reverted, which names it back.
    undo_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("binding_records.id", ondelete="SET NULL")
    )
    undone_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("binding_records.id", ondelete="SET NULL")
    )
    # The bulk job this attempt belonged to, if any.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))

    @property
    def succeeded(self) -> bool:
        """Whether the attempt changed or confirmed a binding."""
        return self.outcome != BindingOutcome.FAILED

    def __repr__(self) -> str:
        """Describe the attempt."""
        return (
            f"<BindingRecord {self.action} order={self.order_id} "
            f"owner={self.owner_type_id}:{self.owner_id} {self.outcome}>"
        )


class PortalCatalog(db.Model):  # type: ignore[name-defined]
    """A portal's reference names in one language, cached between opens.

    Owner types, order status names and CRM stage names change rarely; opening the app
    fetches them in the same batch as the rights and keeps them here, so every worker's
    picker pages show names without asking Bitrix24 again.
    """

    __tablename__ = "portal_catalogs"

    portal_id: Mapped[int] = mapped_column(
        ForeignKey("portals.id", ondelete="CASCADE"), primary_key=True
    )
    lang: Mapped[str] = mapped_column(String(8), primary_key=True)
    # JSON: {"owner_types": [...], "order_statuses": {id: name}, "stages": {type: {id: name}}}
    data: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobState(enum.StrEnum):
    """Where a bulk job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class JobItemState(enum.StrEnum):
    """Where one order of a bulk job stands."""

    PENDING = "pending"
    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    REPLACED = "replaced"
    FAILED = "failed"
    # Outcomes of an undo job's items.
    UNBOUND = "unbound"
    RESTORED = "restored"


class Job(db.Model):  # type: ignore[name-defined]
    """A bulk job: many orders bound to one owner (or a bind job undone), in the background.

    Workers claim a job with a lease (``lease_until``); its items are sent in batches, and a
    worker that took a job over resumes at the first batch with pending items.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_portal_id", "portal_id", "id"),
        Index("ix_jobs_claim", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    portal_id: Mapped[int] = mapped_column(ForeignKey("portals.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    user_name: Mapped[str] = mapped_column(String(255), default="")
    lang: Mapped[str] = mapped_column(String(8), default="en")
    kind: Mapped[str] = mapped_column(String(16), default="bind")
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    paused_reason: Mapped[str | None] = mapped_column(String(64))
    owner_type_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    owner_title: Mapped[str | None] = mapped_column(Text)
    # JSON: the order filter still to be read, or null once the items exist.
    pending_filter: Mapped[str | None] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    undo_of_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When a worker last ran one of its batches: the least recently served job goes next.
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # JSON {order id: [ownerTypeId, ownerId] or null}: the owners of the next batch's orders,
    # read before it was sent (with the batch before, or by the POST); order ids absent were
    # not read. Only an answer that may follow a lost one (``unconfirmed``) is judged by them.
    seen_owners: Mapped[str | None] = mapped_column(Text)
    # The first unfinished batch may have been applied without its answer being recorded
    # (its answer was lost, or the worker holding the job died).
    unconfirmed: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        """Describe the job."""
        return f"<Job {self.id} {self.kind} {self.state} portal={self.portal_id}>"


class JobItem(db.Model):  # type: ignore[name-defined]
    """One order of a bulk job and how it ended."""

    __tablename__ = "job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "order_id"),
        Index("ix_job_items_job_batch", "job_id", "batch_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    batch_no: Mapped[int] = mapped_column(Integer)
    order_id: Mapped[int] = mapped_column(BigInteger)
    order_number: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=JobItemState.PENDING.value)
    # The owner the order had before (read in the same batch), for history and undo.
    previous_owner_type_id: Mapped[int | None] = mapped_column(Integer)
    previous_owner_id: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        """Describe the item."""
        return f"<JobItem job={self.job_id} order={self.order_id} {self.state}>"


class RateBucket(db.Model):  # type: ignore[name-defined]
    """One portal's request bucket, shared by every process when no Redis is configured."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    # Unix time of ``level``.
    since: Mapped[float] = mapped_column(Float)
    # Unix time of the portal's last web (not background) request; None: none yet.
    web_at: Mapped[float | None] = mapped_column(Float)
