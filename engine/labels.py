"""Anti-counterfeit labels (防伪标签): label batches, exports, verification and scans.

- Labels are signed with Ed25519 keys (``engine.labelkeys``): the newest key signs,
  older keys keep verifying, a retired key's labels verify as ``revoked``.
- A batch takes its serials from one counter and its count from the licence's quota
  with one guarded UPDATE, so concurrent batches can never exceed the quota (and the
  licence table's CHECK constraint says the same). Labels are inserted as plain rows,
  never as ORM objects, and no image is made when issuing: exports render on demand.
- Verifying a code never raises: anything that is not a well-formed code signed by a
  known key for an issued serial is ``counterfeit``. Every scan is a row in
  ``label_scans`` and is counted on the label by one atomic UPDATE. A label scanned
  more often than a rule allows, or from places too far apart too fast, becomes
  ``suspect`` once, and that first time starts a ``suspect_label`` case for the
  protection department in the same transaction.
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from engine import clock, labelcodes, labelkeys, labelsheet, rules, trace
from engine.db import Base, session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.licensing import PRODUCTS, Grade, Licence
from engine.services import start_guard, starters

logger = logging.getLogger(__name__)

GENUINE, COUNTERFEIT, REVOKED, SUSPECT = "genuine", "counterfeit", "revoked", "suspect"
STATUSES = (GENUINE, COUNTERFEIT, REVOKED, SUSPECT)

LABEL_STAFF = frozenset({"market"})
REVOKERS = frozenset({"leadership", "office"})
SUSPECT_PROCESS = "suspect_label"
INSERT_CHUNK = 5_000

BAD_COUNT = N_("应为不超过单批上限的正整数")
OVER_QUOTA = N_("超过剩余标签配额")

_settings = {"public_base_url": "http://127.0.0.1:5000", "max_batch": 200_000}


def configure(secret_key, public_base_url=None, max_batch=None):
    """Called once by the host: the secret that seals private keys, the public site root."""
    labelkeys.configure(secret_key)
    if public_base_url:
        _settings["public_base_url"] = public_base_url
    if max_batch:
        _settings["max_batch"] = int(max_batch)


def public_base_url():
    return _settings["public_base_url"]


def max_batch():
    return _settings["max_batch"]


# -- tables ------------------------------------------------------------------------------------

class LabelSerialCounter(Base):
    """One row: the next serial to hand out, shared by every licence."""

    __tablename__ = "label_serial_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_serial: Mapped[int] = mapped_column(BigInteger)


class LabelBatch(Base):
    """Labels issued together for one licence: the serials first_serial .. last_serial."""

    __tablename__ = "label_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("label_signing_keys.id"))
    first_serial: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    licence: Mapped[Licence] = relationship()
    key: Mapped[labelkeys.SigningKey] = relationship()

    __table_args__ = (
        CheckConstraint("count > 0", name="positive_count"),
        CheckConstraint("status in ('active', 'cancelled')", name="status"),
    )

    @property
    def last_serial(self):
        return self.first_serial + self.count - 1


class Label(Base):
    """One printed label. Its signature is kept so exports need no private key."""

    __tablename__ = "labels"

    serial: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # Not indexed on purpose: a batch's labels are its serial range (the primary key).
    batch_id: Mapped[int] = mapped_column(ForeignKey("label_batches.id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    scan_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_scanned_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_place: Mapped[str | None] = mapped_column(String(120))
    first_lat: Mapped[float | None] = mapped_column(Float)
    first_lng: Mapped[float | None] = mapped_column(Float)
    last_scanned_at: Mapped[datetime | None] = mapped_column(DateTime)
    suspect_at: Mapped[datetime | None] = mapped_column(DateTime)
    # scan_count or too_fast; see SUSPECT_REASONS
    suspect_reason: Mapped[str | None] = mapped_column(String(32))
    suspect_case_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))

    batch: Mapped[LabelBatch] = relationship()


class LabelScan(Base):
    """One verification of a code, genuine or not (``serial`` is empty for counterfeits)."""

    __tablename__ = "label_scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[int | None] = mapped_column(ForeignKey("labels.serial"))
    status: Mapped[str] = mapped_column(String(16))
    scanned_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    place: Mapped[str] = mapped_column(String(120), default="")
    # What was presented, for counterfeits only (reduced to printable ASCII).
    code: Mapped[str | None] = mapped_column(String(160))

    __table_args__ = (
        Index("ix_label_scans_serial_id", "serial", "id"),
        CheckConstraint("status in ('genuine', 'counterfeit', 'revoked', 'suspect')",
                        name="status"),
    )


SUSPECT_REASONS = {
    "scan_count": N_("扫码次数异常偏多"),
    "too_fast": N_("短时间内在相距很远的地点被扫码"),
}


# -- batches -----------------------------------------------------------------------------------

def may_manage_labels(user, licence):
    """The enterprise holding the licence, or the market department."""
    if user is None:
        return False
    if user.enterprise_id is not None:
        return user.enterprise_id == licence.enterprise_id
    return bool(user.group_ids & LABEL_STAFF)


def may_view_batch(user, batch):
    if user is None:
        return False
    if user.enterprise_id is not None:
        return user.enterprise_id == batch.licence.enterprise_id
    return True


def _batch_count(value):
    limit = _settings["max_batch"]
    count = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) < 12:
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        count = int(value.strip())
    if count is None or not 1 <= count <= limit:
        raise ValidationFailed("标签数量无效", fields={"count": [BAD_COUNT]}, max=limit)
    return count


def _refuse_issue(licence, count):
    """Say why a batch cannot be issued (the licence row as it is now)."""
    if not licence.is_active_on(clock.now().date()):
        raise Conflict("授权未生效、已撤销或已过期，不能发放标签", licence_id=licence.id,
                       licence_status=licence.status)
    if count > licence.quota_left:
        raise ValidationFailed("超过剩余标签配额，未发放任何标签", fields={"count": [OVER_QUOTA]},
                               quota_left=licence.quota_left)


def _allocate_serials(count):
    counter = LabelSerialCounter.__table__
    next_serial = session().execute(
        update(counter).where(counter.c.id == 1)
        .values(next_serial=counter.c.next_serial + count)
        .returning(counter.c.next_serial)).scalar()
    if next_serial is None:
        # The very first batch creates the counter; a racing first batch gets a conflict.
        session().execute(insert(counter).values(id=1, next_serial=1 + count))
        next_serial = 1 + count
    if next_serial - 1 > labelcodes.MAX_SERIAL:
        raise Conflict("标签序列号已用尽")
    return next_serial - count


def _label_rows(batch, private):
    """(serial, batch id, signature, scan count) of every label of the batch, in chunks."""
    sign = labelcodes.signer(private, batch.key_id)
    batch_id = batch.id
    end = batch.first_serial + batch.count
    for start in range(batch.first_serial, end, INSERT_CHUNK):
        yield [(serial, batch_id, sign(serial), 0)
               for serial in range(start, min(start + INSERT_CHUNK, end))]


def _insert_labels(batch, private):
    """Insert the batch's labels as plain tuples on the session's own connection (and so in
    its transaction): executemany on SQLite, COPY on PostgreSQL. ORM objects would cost
    several times as long for a 100,000-label batch."""
    columns = "serial, batch_id, signature, scan_count"
    connection = session().connection()
    raw = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY labels ({columns}) FROM STDIN") as copy:
                for rows in _label_rows(batch, private):
                    for row in rows:
                        copy.write_row(row)
        return
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO labels ({columns}) VALUES ({', '.join([marker] * 4)})"
    cursor = raw.cursor()
    try:
        for rows in _label_rows(batch, private):
            cursor.executemany(statement, rows)
    finally:
        cursor.close()


def issue_label_batch(licence, count, actor):
    """Issue ``count`` signed labels for an active licence, within what is left of its quota.

    Refuses with 422 (nothing issued) over the quota, 409 when the licence is not active.
    """
    if not may_manage_labels(actor, licence):
        raise Forbidden("只有持证企业或市场开发部可以发放标签")
    count = _batch_count(count)
    _refuse_issue(licence, count)

    # The quota is taken in one statement: two concurrent batches cannot both pass.
    taken = session().execute(
        update(Licence).where(Licence.id == licence.id, Licence.status == "active",
                              Licence.labels_issued + count <= Licence.label_quota)
        .values(labels_issued=Licence.labels_issued + count)
        .execution_options(synchronize_session=False))
    session().refresh(licence)
    if taken.rowcount != 1:
        _refuse_issue(licence, count)
        raise Conflict("另一个操作同时修改了此授权，请重试", licence_id=licence.id)

    key = labelkeys.key_for_issuing()
    private = labelkeys.private_key(key)
    batch = LabelBatch(licence_id=licence.id, key_id=key.id,
                       first_serial=_allocate_serials(count), count=count, status="active",
                       created_at=clock.now(), created_by=getattr(actor, "id", None))
    session().add(batch)
    session().flush()
    _insert_labels(batch, private)
    logger.info("batch %s: %s labels for licence %s (serials %s-%s, key %s) by user %s",
                batch.id, count, licence.id, batch.first_serial, batch.last_serial, key.id,
                getattr(actor, "id", None))
    return batch


def get_batch(batch_id):
    batch = session().get(LabelBatch, batch_id)
    if batch is None:
        raise NotFound("标签批次不存在", batch_id=batch_id)
    return batch


def list_batches(licence_id):
    return session().scalars(select(LabelBatch).where(LabelBatch.licence_id == licence_id)
                             .order_by(LabelBatch.id.desc())).all()


def cancel_label_batch(batch, actor, reason=""):
    """Cancel a batch (misprint, loss): its labels verify as revoked from now on.

    The cancelled labels still count against the quota: they may exist on paper.
    """
    if not may_manage_labels(actor, batch.licence):
        raise Forbidden("只有持证企业或市场开发部可以作废标签批次")
    cancelled = session().execute(
        update(LabelBatch).where(LabelBatch.id == batch.id, LabelBatch.status == "active")
        .values(status="cancelled", cancelled_at=clock.now(),
                cancelled_by=getattr(actor, "id", None), cancel_reason=str(reason or "")[:2000])
        .execution_options(synchronize_session=False))
    session().refresh(batch)
    if cancelled.rowcount != 1:
        raise Conflict("该批次已作废", batch_id=batch.id)
    logger.info("batch %s cancelled by user %s", batch.id, getattr(actor, "id", None))
    return batch


def revoke_licence(licence, actor=None, reason=""):
    """Revoke a licence: its labels verify as revoked from now on.

    ``actor`` None is the system (a process step, such as a forced expulsion).
    TODO: this belongs to engine.licensing; it lives here until the expulsion process
    (which revokes licences) adds its own, and should then move there.
    """
    if actor is not None and (actor.enterprise_id is not None
                              or not actor.group_ids & REVOKERS):
        raise Forbidden("只有领导小组或品牌管理办公室可以撤销授权")
    if licence.status == "revoked":
        raise Conflict("该授权已撤销", licence_id=licence.id)
    licence.status = "revoked"
    licence.revoked_at = clock.now()
    session().flush()
    logger.warning("licence %s revoked by user %s: %s", licence.id, getattr(actor, "id", None),
                   reason)
    return licence


# -- exports -----------------------------------------------------------------------------------

def _iter_codes(key_id, start, end, chunk):
    while start <= end:
        rows = session().execute(
            select(Label.serial, Label.signature)
            .where(Label.serial >= start, Label.serial <= min(end, start + chunk - 1))
            .order_by(Label.serial)).all()
        for serial, signature in rows:
            yield serial, labelcodes.encode(key_id, serial, signature)
        start += chunk


def iter_batch_codes(batch, chunk=10_000):
    """(serial, code) of every label of a batch in serial order, read in chunks."""
    return _iter_codes(batch.key_id, batch.first_serial, batch.last_serial, chunk)


def iter_batch_urls(batch, first=0, limit=None, chunk=10_000):
    """(serial, URL) of the labels of a batch, from the ``first``-th label, at most ``limit``."""
    prefix = labelcodes.label_url(_settings["public_base_url"], "")
    head = batch.first_serial + first
    last = batch.last_serial if limit is None else min(batch.last_serial, head + limit - 1)
    for serial, code in _iter_codes(batch.key_id, head, last, chunk):
        yield serial, prefix + code


def format_serial(serial):
    return f"{serial:012d}"


def batch_page_count(batch):
    return labelsheet.page_count(batch.count)


def render_batch_pdf(batch, out, first_page=1, last_page=None):
    """Write pages ``first_page`` .. ``last_page`` (1-based, inclusive) of a batch's label
    sheet as PDF to ``out``; returns the number of pages written."""
    total = labelsheet.page_count(batch.count)
    last_page = total if last_page is None else last_page
    if not 1 <= first_page <= last_page <= total:
        problem = N_("页码超出范围")
        raise ValidationFailed("页码超出范围", fields={"page": [problem]}, pages=total)
    per_page = labelsheet.LABELS_PER_PAGE
    urls = iter_batch_urls(batch, (first_page - 1) * per_page,
                           (last_page - first_page + 1) * per_page)
    title = f"Batch {batch.id}  Licence {batch.licence.number}"
    return labelsheet.render_pdf(((format_serial(s), url) for s, url in urls), out, title,
                                 first_page=first_page, total_pages=total)


# -- verification ------------------------------------------------------------------------------

@dataclass
class Place:
    """Where a scan happened: coordinates the scanner shared, else the network it came from."""

    lat: float | None = None
    lng: float | None = None
    network: str = ""

    @property
    def has_position(self):
        return self.lat is not None and self.lng is not None

    @property
    def text(self):
        if self.has_position:
            return f"{self.lat:.4f},{self.lng:.4f}"
        return self.network[:120]


def make_place(lat=None, lng=None, network=""):
    """A Place from untrusted input: coordinates out of range or unparsable are dropped,
    and rounded to four decimals (about 10 m) so no more than needed is kept."""
    try:
        lat_value, lng_value = float(lat), float(lng)
    except (TypeError, ValueError):
        return Place(network=str(network or "")[:120])
    if (not math.isfinite(lat_value) or not math.isfinite(lng_value)
            or not -90 <= lat_value <= 90 or not -180 <= lng_value <= 180):
        return Place(network=str(network or "")[:120])
    return Place(round(lat_value, 4), round(lng_value, 4), str(network or "")[:120])


@dataclass
class Verification:
    status: str
    serial: int | None = None
    label: Label | None = None
    batch: LabelBatch | None = None
    licence: Licence | None = None
    revoked_because: str | None = None
    trace: list = field(default_factory=list)

    @property
    def product_name(self):
        return PRODUCTS.get(self.licence.product, self.licence.product) if self.licence else None


def distance_km(lat1, lng1, lat2, lng2):
    """Great-circle distance (haversine) on a 6371 km sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _printable(text):
    if not isinstance(text, str):
        return ""
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:160])


def _record_scan(serial, status, place, now, code=None):
    session().add(LabelScan(serial=serial, status=status, scanned_at=now, lat=place.lat,
                            lng=place.lng, place=place.text, code=code))
    session().flush()


def verify_code(code, place=None):
    """Verify a code and count the scan. Never raises for any input; returns a Verification.

    Status: ``counterfeit`` (malformed, bad signature, unknown key or serial), ``revoked``
    (licence revoked, batch cancelled or key retired), ``suspect`` (a genuine code whose
    scans look like a copied label) or ``genuine``.
    """
    place = place or Place()
    now = clock.now()
    parsed = labelcodes.decode(code)
    key = session().get(labelkeys.SigningKey, parsed.key_id) if parsed is not None else None
    found = None
    if key is not None and labelcodes.signature_valid(labelkeys.public_key(key), parsed):
        found = session().execute(
            select(LabelBatch.key_id).join(Label, Label.batch_id == LabelBatch.id)
            .where(Label.serial == parsed.serial)).first()
    if found is None or found.key_id != key.id:
        _record_scan(None, COUNTERFEIT, place, now, code=_printable(code))
        return Verification(COUNTERFEIT)

    label = _count_scan(parsed.serial, place, now)
    batch = label.batch
    licence = batch.licence
    if licence.status == "revoked":
        revoked_because = "licence"
    elif batch.status == "cancelled":
        revoked_because = "batch"
    elif key.retired_at is not None:
        revoked_because = "key"
    else:
        revoked_because = None

    if revoked_because:
        status = REVOKED
    elif label.suspect_at is not None or _becomes_suspect(label, licence, place, now):
        status = SUSPECT
    else:
        status = GENUINE
    _record_scan(label.serial, status, place, now)
    return Verification(status, label.serial, label, batch, licence, revoked_because,
                        trace.list_trace_events(licence.id, batch.id))


def _count_scan(serial, place, now):
    """Count one scan atomically; the first scan also sets the first-verified time and place."""
    first = Label.first_scanned_at.is_(None)
    session().execute(
        update(Label).where(Label.serial == serial).values(
            scan_count=Label.scan_count + 1,
            last_scanned_at=now,
            first_scanned_at=func.coalesce(Label.first_scanned_at, now),
            first_place=case((first, place.text), else_=Label.first_place),
            first_lat=case((first, place.lat), else_=Label.first_lat),
            first_lng=case((first, place.lng), else_=Label.first_lng))
        .execution_options(synchronize_session=False))
    # The row is now locked by this transaction: what it reads is what it wrote. Its batch,
    # licence, enterprise and grade come in the same query: the answer shows them all.
    return session().scalars(
        select(Label).where(Label.serial == serial)
        .options(joinedload(Label.batch).joinedload(LabelBatch.licence)
                 .joinedload(Licence.enterprise),
                 joinedload(Label.batch).joinedload(LabelBatch.licence)
                 .joinedload(Licence.grade).lazyload(Grade.dimensions))
        .execution_options(populate_existing=True)).one()


def _becomes_suspect(label, licence, place, now):
    reason = None
    if label.scan_count > rules.get_rule("label.suspect_scan_count"):
        reason = "scan_count"
    elif place.has_position:
        previous = session().execute(
            select(LabelScan.lat, LabelScan.lng, LabelScan.scanned_at)
            .where(LabelScan.serial == label.serial, LabelScan.lat.is_not(None),
                   LabelScan.lng.is_not(None))
            .order_by(LabelScan.id.desc()).limit(1)).first()
        if previous is not None:
            km = distance_km(previous.lat, previous.lng, place.lat, place.lng)
            hours = max((now - previous.scanned_at).total_seconds(), 1.0) / 3600
            if (km >= rules.get_rule("label.suspect_min_km")
                    and km / hours > rules.get_rule("label.suspect_km_per_hour")):
                reason = "too_fast"
    if reason is None:
        return False

    flagged = session().execute(
        update(Label).where(Label.serial == label.serial, Label.suspect_at.is_(None))
        .values(suspect_at=now, suspect_reason=reason)
        .execution_options(synchronize_session=False))
    if flagged.rowcount == 1:
        # Only the scan that flagged the label raises the case.
        case_id = _start_suspect_case(label, licence, place, reason)
        session().execute(update(Label).where(Label.serial == label.serial)
                          .values(suspect_case_id=case_id)
                          .execution_options(synchronize_session=False))
    session().refresh(label)
    return True


@starters(SUSPECT_PROCESS)
def nobody_starts_a_suspect_case(user):
    return False


@start_guard(SUSPECT_PROCESS)
def check_can_start_suspect_case(user, enterprise, data):
    """Nobody starts this process by hand: the verification of a label does."""
    raise Forbidden("疑似复制标签核查由系统在查验标签时自动发起")


def _start_suspect_case(label, licence, place, reason):
    from engine import deploy, runtime

    data = {
        "label_serial": format_serial(label.serial),
        "batch_id": label.batch_id,
        "licence_number": licence.number,
        "enterprise_name": licence.enterprise.name,
        "product": PRODUCTS.get(licence.product, licence.product),
        "scan_count": label.scan_count,
        "suspect_reason": SUSPECT_REASONS[reason],
        "first_verified_at": label.first_scanned_at.isoformat() + "Z",
        "first_verified_place": label.first_place or "",
        "latest_place": place.text,
    }
    try:
        deploy.get_version(SUSPECT_PROCESS)
    except NotFound:
        # The label is still marked suspect; only the protection task is missing.
        logger.error("process %s is not deployed: no case for suspect label %s",
                     SUSPECT_PROCESS, label.serial)
        return None
    instance = runtime.start_instance(SUSPECT_PROCESS, None, data,
                                      enterprise_id=licence.enterprise_id,
                                      title=f"疑似复制标签：{format_serial(label.serial)}")
    logger.warning("label %s is suspect (%s): case %s started", label.serial, reason,
                   instance.id)
    return instance.id
