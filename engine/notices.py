"""Public notices (公示): expulsions and other announcements, never edited once published.

A notice is published once and stays as it was: a mistake is put right by a new
notice of kind ``correction`` that names the notice it corrects (``corrects_id``).
The rows refuse updates and deletes at the ORM level, as the deposit ledger does.
"""

import logging
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, event, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Forbidden, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

KINDS = {
    "expulsion": N_("清退公示"),
    "announcement": N_("公告"),
    "correction": N_("更正公告"),
}
PUBLISHERS = frozenset({"office"})
TITLE_MAX = 200
BODY_MAX = 20_000


class Notice(Base):
    """One published notice; ``number`` is its public reference (YJGS-2026-0001)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The case that caused the notice (an expulsion), if any.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))

    corrects: Mapped["Notice | None"] = relationship(remote_side=[id])

    __table_args__ = (
        CheckConstraint("kind in ('expulsion', 'announcement', 'correction')", name="kind"),
        CheckConstraint("(kind = 'correction') = (corrects_id IS NOT NULL)",
                        name="correction_names_original"),
    )


@event.listens_for(Notice, "before_update")
@event.listens_for(Notice, "before_delete")
def _refuse_change(_mapper, _connection, target):
    raise RuntimeError(f"notice {target.id} is published: publish a correction instead")


def may_publish(user):
    return user is not None and user.enterprise_id is None and bool(
        user.group_ids & PUBLISHERS)


def _next_number(now):
    prefix = f"YJGS-{now.year}-"
    count = session().scalar(select(func.count(Notice.id)).where(
        Notice.number.like(f"{prefix}%")))
    return f"{prefix}{count + 1:04d}"


def _clean(title, body):
    title = (title or "").strip()
    body = (body or "").strip()
    errors = {}
    if not title or len(title) > TITLE_MAX:
        bad_title = N_("请填写 1-200 字的标题")
        errors["title"] = [bad_title]
    if not body or len(body) > BODY_MAX:
        bad_body = N_("请填写正文（不超过 20000 字）")
        errors["body"] = [bad_body]
    if errors:
        raise ValidationFailed("公示内容无效", fields=errors)
    return title, body


def publish(kind, title, body, actor=None, instance_id=None, enterprise_id=None,
            corrects_id=None):
    """Publish a notice now; only flushes. ``actor`` None is a process step (checked there)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    title, body = _clean(title, body)
    now = clock.now()
    notice = Notice(number=_next_number(now), kind=kind, title=title, body=body,
                    published_at=now, published_by=getattr(actor, "id", None),
                    instance_id=instance_id, enterprise_id=enterprise_id,
                    corrects_id=corrects_id)
    session().add(notice)
    session().flush()
    logger.info("notice %s (%s) published by user %s", notice.number, kind,
                getattr(actor, "id", None))
    return notice


def publish_announcement(actor, title, body, corrects_id=None):
    """Office staff publish an announcement, or a correction naming an earlier notice."""
    if not may_publish(actor):
        raise Forbidden("只有品牌管理办公室可以发布公示")
    if corrects_id is None:
        return publish("announcement", title, body, actor)
    original = session().get(Notice, corrects_id)
    if original is None:
        unknown = N_("被更正的公示不存在")
        raise ValidationFailed("被更正的公示不存在", fields={"corrects_id": [unknown]})
    return publish("correction", title, body, actor, enterprise_id=original.enterprise_id,
                   corrects_id=original.id)


def get_notice(notice_id):
    notice = session().get(Notice, notice_id)
    if notice is None:
        raise NotFound("公示不存在", notice_id=notice_id)
    return notice


def list_notices(limit=100, kind=None):
    """The newest published notices first."""
    query = select(Notice).order_by(Notice.published_at.desc(), Notice.id.desc()).limit(limit)
    if kind:
        query = query.where(Notice.kind == kind)
    return session().scalars(query).all()


def corrections_of(notice):
    return session().scalars(select(Notice).where(Notice.corrects_id == notice.id)
                             .order_by(Notice.id)).all()
