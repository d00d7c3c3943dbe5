"""Tables of the engine and of the brand office's records.

Human tasks and timers are projections of the workflow state, rewritten after
every step, so that an inbox or the scheduler never deserializes a workflow.
Times are stored in UTC (naive ``DateTime`` columns holding UTC).
"""

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base


class Group(Base):
    """A department; the id is what a BPMN lane names."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set for enterprise users: they see only their own enterprise's cases.
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    # Bumped to revoke every API token the user holds.
    token_generation: Mapped[int] = mapped_column(Integer, default=0)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin")
    enterprise: Mapped["Enterprise | None"] = relationship()

    @property
    def group_ids(self):
        return {m.group_id for m in self.memberships}

    def leads(self, group_id):
        return any(m.group_id == group_id and m.is_lead for m in self.memberships)

    # Flask-Login protocol, kept here so the web layer needs no wrapper class.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self):
        return self.active

    def get_id(self):
        return str(self.id)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(back_populates="memberships")


class Enterprise(Base):
    """An enterprise known to the office: applicant, admitted, rejected or lapsed."""

    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="registered")
    status_reason: Mapped[str | None] = mapped_column(Text)
    deposit_required_fen: Mapped[int | None] = mapped_column(BigInteger)
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        CheckConstraint(
            "status in ('registered', 'applying', 'admitted', 'rejected', 'lapsed', 'expelled')",
            name="status"),
    )


class DepositEntry(Base):
    """One immutable line of an enterprise's performance deposit ledger, in fen.

    Written only by ``engine.ledger``, which says what each kind does to the balance.
    ``sequence`` numbers an enterprise's entries 1, 2, 3... (two writers that somehow
    passed the ledger's lock together collide on it); ``digest`` chains each entry to
    the one before, so that an edit behind the ledger's back fails reconciliation.
    """

    __tablename__ = "deposit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # The case that caused the entry, and who approved it.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    digest: Mapped[str] = mapped_column(String(64))

    approver: Mapped[User | None] = relationship()

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="positive"),
        CheckConstraint("kind in ('paid_in', 'frozen', 'unfrozen', 'deducted', 'paid_out', "
                        "'recovered', 'topped_up', 'refunded')", name="kind"),
        UniqueConstraint("enterprise_id", "sequence"),
    )


class ProcessVersion(Base):
    """One deployed version of a process: its files, and the parsed spec stored once."""

    __tablename__ = "process_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict] = mapped_column(JSON)
    spec: Mapped[dict] = mapped_column(JSON)
    deployed_by: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("process_key", "version"),)


class Instance(Base):
    """A running or finished case. ``state`` is the workflow without its spec."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    title: Mapped[str] = mapped_column(String(200), default="")
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    state: Mapped[dict] = mapped_column(JSON)
    # Optimistic lock: an UPDATE that finds another value lost a race (HTTP 409).
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    version: Mapped[ProcessVersion] = relationship(lazy="joined")
    enterprise: Mapped[Enterprise | None] = relationship()

    __mapper_args__ = {"version_id_col": lock_version}


class HumanTask(Base):
    """A user task of an instance as the inbox sees it."""

    __tablename__ = "human_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(64))
    task_uuid: Mapped[str] = mapped_column(String(36))
    spec_name: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[str] = mapped_column(String(32))
    form: Mapped[str | None] = mapped_column(String(64))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Set while a task is delegated: the user it returns to.
    delegated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    follow_up_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    instance: Mapped[Instance] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])

    __mapper_args__ = {"version_id_col": lock_version}
    __table_args__ = (
        UniqueConstraint("instance_id", "task_uuid"),
        Index("ix_human_tasks_inbox", "group_id", "state", "due_at"),
        Index("ix_human_tasks_assignee", "assignee_id", "state", "due_at"),
        CheckConstraint("state in ('open', 'completed', 'cancelled')", name="state"),
    )


class Timer(Base):
    """A waiting timer event of an instance, mirrored from the workflow after each step."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    task_uuid: Mapped[str] = mapped_column(String(36))
    spec_name: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[datetime] = mapped_column(DateTime, index=True)

    __table_args__ = (UniqueConstraint("instance_id", "task_uuid"),)


class HistoryEntry(Base):
    """One recorded step of a case: who, when, which task, what changed."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # started, completed, claimed, unclaimed, assigned, delegated, returned, timer, effect
    kind: Mapped[str] = mapped_column(String(16))
    task_spec: Mapped[str | None] = mapped_column(String(128))
    task_name: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


class ClockOffset(Base):
    """The virtual clock's offset from real time (demo and test modes only); one row."""

    __tablename__ = "clock_offset"

    id: Mapped[int] = mapped_column(primary_key=True)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class ProcessDraft(Base):
    """A revision of a process being edited in the modeler: saved, checked, never run.

    ``files`` holds the whole deploy unit as text (the ``.bpmn`` and the ``.dmn`` tables
    it calls); deploying it creates the next ``ProcessVersion`` and records which.
    """

    __tablename__ = "process_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(64), index=True)
    base_version: Mapped[int | None] = mapped_column(Integer)
    files: Mapped[dict] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    deployed_version: Mapped[int | None] = mapped_column(Integer)
    # Two officers saving the same draft: the second save answers 409 instead of winning.
    lock_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": lock_version}


class FormRevision(Base):
    """One saved content of a form file under ``forms/``: who changed it, when and why."""

    __tablename__ = "form_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_name: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[str] = mapped_column(Text)
    saved_by: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class ProcessMigration(Base):
    """Running cases moved from one version of a process to another, in one step."""

    __tablename__ = "process_migrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(64), index=True)
    from_version: Mapped[int] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    moved: Mapped[list] = mapped_column(JSON)
    # instance id (as text) -> the reasons it stayed on from_version
    kept: Mapped[dict] = mapped_column(JSON)
    migrated_by: Mapped[str] = mapped_column(String(64))
    migrated_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(Text)
