"""The audit chain: one record for every committed unit of work that changed anything.

A request, a timer run or a command commits once (see ``engine.db``); just before it does,
the rows it inserted, updated or deleted are summarised in one ``AuditRecord`` (who, which
action, when, table by table the ids touched) and chained to the record before it by a
SHA-256 digest of its content and the previous digest. Editing, deleting or inserting a
record behind the application's back breaks the chain, and ``verify_chain`` names the
first record where it breaks (``flask --app web verify-audit``).

Records are written in the committing transaction, so a rolled-back step leaves none.
Chaining needs one writer at a time: on PostgreSQL a transaction-scoped advisory lock is
taken just before the record is written (held until the commit, a few milliseconds); on
SQLite the transaction already holds the database's only write lock, since it has written
the rows it is about to record.

What the chain proves is that the record of what the application did was not changed
afterwards. A row changed directly in the database by someone who bypasses the
application leaves no record at all; the deposit ledger has its own chain for that reason.
"""

import hashlib
import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, String, event, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine import clock
from engine.db import Base

logger = logging.getLogger(__name__)

# Ids listed per table and operation; beyond it a record keeps the count only.
MAX_IDS = 50
# Any fixed number: the key of the PostgreSQL advisory lock that serializes chaining.
ADVISORY_LOCK_KEY = 7_700_417


class AuditRecord(Base):
    """One committed unit of work: who did what to which rows, chained by digest."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(300))
    # {"table": {"insert": {"count": n, "ids": [...]}, "update": ..., "delete": ...}}
    changes: Mapped[dict] = mapped_column(JSON)
    previous_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))


# -- who and what ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    name: str
    action: str


_job_actor: ContextVar[Actor | None] = ContextVar("audit_job_actor", default=None)
_actor_getter = None
_fallback_getter = None


def bind_actor(getter, fallback=None):
    """The host tells the chain who is acting: ``getter`` gives the ``Actor`` of a request
    (None outside one); then a job's ``acting_as``; then ``fallback`` (a command line, say);
    then "system"."""
    global _actor_getter, _fallback_getter
    _actor_getter, _fallback_getter = getter, fallback


class acting_as:
    """Name the actor and action of a job or command: ``with audit.acting_as("timer",
    "fire due timers"):``."""

    def __init__(self, name, action):
        self.actor = Actor(name, action)

    def __enter__(self):
        self._token = _job_actor.set(self.actor)
        return self.actor

    def __exit__(self, *exc):
        _job_actor.reset(self._token)


def current_actor():
    actor = _actor_getter() if _actor_getter is not None else None
    actor = actor or _job_actor.get()
    if actor is None and _fallback_getter is not None:
        actor = _fallback_getter()
    return actor or Actor("system", "unattributed")


# -- collecting changes ------------------------------------------------------------------------

AUDIT_TABLES = frozenset({"audit_records"})
_PENDING = "audit_pending"


def _note(session, table, operation, ident=None):
    if table in AUDIT_TABLES:
        return
    changes = session.info.setdefault(_PENDING, {})
    entry = changes.setdefault(table, {}).setdefault(operation, {"count": 0, "ids": []})
    entry["count"] += 1
    if ident is not None and len(entry["ids"]) < MAX_IDS:
        entry["ids"].append(ident)


def _identity(obj):
    state = obj.__dict__
    keys = [c.key for c in obj.__mapper__.primary_key]
    values = [state.get(k) for k in keys]
    return values[0] if len(values) == 1 else values


def _after_flush(session, _context):
    for operation, objects in (("insert", session.new), ("update", session.dirty),
                               ("delete", session.deleted)):
        for obj in objects:
            mapper = getattr(obj, "__mapper__", None)
            if mapper is None:
                continue
            if operation == "update" and not session.is_modified(obj, include_collections=False):
                continue
            _note(session, mapper.local_table.name, operation, _identity(obj))


def _after_bulk(orm_execute_state):
    """Statements run directly (a bulk insert of labels, an UPDATE ... WHERE) count too."""
    if not (orm_execute_state.is_insert or orm_execute_state.is_update
            or orm_execute_state.is_delete):
        return
    table = getattr(orm_execute_state.statement, "table", None)
    name = getattr(table, "name", None)
    if name is None:
        return
    operation = ("insert" if orm_execute_state.is_insert
                 else "update" if orm_execute_state.is_update else "delete")
    _note(orm_execute_state.session, name, operation + " (statement)")


def _before_commit(session):
    session.flush()
    changes = session.info.pop(_PENDING, None)
    if not changes:
        return
    record_changes(session, changes)
    # The record's own flush must not start another record.
    session.info.pop(_PENDING, None)


def _forget(session, *_args):
    session.info.pop(_PENDING, None)


def install():
    """Listen on every session: once per process, by the host, before any commit."""
    if event.contains(Session, "before_commit", _before_commit):
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _after_bulk)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_rollback", _forget)
    event.listen(Session, "after_soft_rollback", _forget)


# -- chaining ----------------------------------------------------------------------------------

def digest_of(record):
    content = json.dumps({
        "sequence": record.sequence, "at": record.at.isoformat(), "actor": record.actor,
        "action": record.action, "changes": record.changes,
        "previous": record.previous_digest,
    }, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def record_changes(session, changes):
    """Append the record of ``changes`` to the chain, in ``session``'s transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": ADVISORY_LOCK_KEY})
    last = session.execute(select(AuditRecord.sequence, AuditRecord.digest)
                           .order_by(AuditRecord.sequence.desc()).limit(1)).first()
    actor = current_actor()
    # What the database gives back is what the digest covers: JSON types only.
    changes = json.loads(json.dumps(changes, default=str))
    record = AuditRecord(sequence=last.sequence + 1 if last else 1, at=clock.now(),
                         actor=actor.name[:100], action=actor.action[:300],
                         changes=changes, previous_digest=last.digest if last else "")
    record.digest = digest_of(record)
    session.add(record)
    session.flush()
    return record


# -- verifying ---------------------------------------------------------------------------------

@dataclass
class ChainCheck:
    records: int = 0
    first_bad_sequence: int | None = None
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def ok(self):
        return self.problem is None


def verify_chain(session, batch=5000):
    """Walk the chain in order; stop at the first record that does not hold.

    A record does not hold when its digest is not that of its content (edited), when it
    does not name the digest before it (a record removed or put in between), or when the
    sequence skips a number (a record removed).
    """
    result = ChainCheck()
    previous_digest = ""
    expected = 1
    after = 0
    while True:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.sequence > after)
                               .order_by(AuditRecord.sequence).limit(batch)).all()
        if not rows:
            return result
        for record in rows:
            problem = None
            if record.sequence != expected:
                problem = f"expected sequence {expected}, found {record.sequence}: " \
                          "a record is missing"
            elif record.previous_digest != previous_digest:
                problem = "does not follow the record before it (removed or inserted)"
            elif digest_of(record) != record.digest:
                problem = "its content does not match its digest (edited)"
            if problem is not None:
                result.first_bad_sequence, result.first_bad_id = record.sequence, record.id
                result.problem = problem
                return result
            result.records += 1
            previous_digest = record.digest
            expected += 1
            after = record.sequence
        session.expunge_all()
