"""Traceability (追溯): what happened to a licensed product, recorded by its enterprise.

An event belongs to a licence, and optionally to one label batch of it (an
event without a batch applies to every batch of the licence). The verify page
shows the events of a label in the order they happened.
"""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Conflict, Forbidden, ValidationFailed

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")

KINDS = {
    "harvest": N_("采收"),
    "processing": N_("加工"),
    "inspection": N_("检验"),
    "transport": N_("运输"),
    "outlet": N_("销售网点"),
}

REQUIRED = N_("必填")
UNKNOWN_KIND = N_("未知的追溯环节")
BAD_TIME = N_("应为日期或日期时间，如 2025-10-01 或 2025-10-01T08:30")
IN_FUTURE = N_("不能晚于当前时间")
TOO_LONG = N_("内容过长")
REPORT_REQUIRED = N_("检验环节须填写检验报告编号")
NOT_THIS_LICENCE = N_("该批次不属于此授权")


class TraceEvent(Base):
    __tablename__ = "trace_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("label_batches.id"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    place: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    # The inspection report's number (检验报告编号); required for inspections.
    report_ref: Mapped[str | None] = mapped_column(String(100))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        CheckConstraint("kind in ('harvest', 'processing', 'inspection', 'transport', 'outlet')",
                        name="kind"),
    )


def parse_local_time(value):
    """A date or date-time typed in Beijing time ("2025-10-01", "2025-10-01T08:30") as UTC."""
    text = str(value or "").strip().replace(" ", "T")
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=SHANGHAI)
    return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _text(data, name, limit, errors, required=False):
    value = data.get(name)
    value = "" if value is None else str(value).strip()
    if required and not value:
        errors[name] = [REQUIRED]
    elif len(value) > limit:
        errors[name] = [TOO_LONG]
    return value


def record_trace_event(licence, actor, data):
    """The licence's enterprise records one trace event; ``data`` is the submitted fields.

    Fields: ``kind``, ``occurred_at`` (Beijing time), ``place``, ``note``, ``report_ref``
    (required for an inspection), ``batch_id`` (optional, a batch of this licence).
    """
    from engine.labels import LabelBatch

    if actor is None or actor.enterprise_id != licence.enterprise_id:
        raise Forbidden("只有持证企业可以登记追溯信息")
    if licence.status not in ("active", "expired"):
        raise Conflict("该授权未生效，不能登记追溯信息", licence_id=licence.id)

    errors = {}
    kind = data.get("kind")
    if kind not in KINDS:
        errors["kind"] = [UNKNOWN_KIND]
    occurred_at = parse_local_time(data.get("occurred_at"))
    if not data.get("occurred_at"):
        errors["occurred_at"] = [REQUIRED]
    elif occurred_at is None:
        errors["occurred_at"] = [BAD_TIME]
    elif occurred_at > clock.now() + timedelta(minutes=5):
        errors["occurred_at"] = [IN_FUTURE]
    place = _text(data, "place", 200, errors, required=True)
    note = _text(data, "note", 2000, errors)
    report_ref = _text(data, "report_ref", 100, errors)
    if kind == "inspection" and not report_ref and "report_ref" not in errors:
        errors["report_ref"] = [REPORT_REQUIRED]

    batch_id = data.get("batch_id")
    if batch_id in (None, ""):
        batch_id = None
    else:
        batch = None
        try:
            batch = session().get(LabelBatch, int(batch_id))
        except (TypeError, ValueError):
            pass
        if batch is None or batch.licence_id != licence.id:
            errors["batch_id"] = [NOT_THIS_LICENCE]
        else:
            batch_id = batch.id
    if errors:
        raise ValidationFailed("追溯信息无效", fields=errors)

    event = TraceEvent(licence_id=licence.id, batch_id=batch_id, kind=kind,
                       occurred_at=occurred_at, place=place, note=note,
                       report_ref=report_ref or None, recorded_by=actor.id,
                       recorded_at=clock.now())
    session().add(event)
    session().flush()
    logger.info("trace event %s (%s) recorded for licence %s", event.id, kind, licence.id)
    return event


def list_trace_events(licence_id, batch_id=None):
    """The events of a licence in the order they happened; with ``batch_id``, that batch's
    own events and the licence-wide ones."""
    query = select(TraceEvent).where(TraceEvent.licence_id == licence_id)
    if batch_id is not None:
        query = query.where(or_(TraceEvent.batch_id.is_(None), TraceEvent.batch_id == batch_id))
    return session().scalars(query.order_by(TraceEvent.occurred_at, TraceEvent.id)).all()
