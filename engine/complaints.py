"""Complaint adjudication (投诉受理与判责): the complaint record and its diagram's effects.

A consumer files without an account (the public site, or the page a label's verify
page links to) or the hotline logs a call; either way a ``complaint`` case starts
and its first service task records the complaint under a reference number that is
the complainant's only key to the public status page, so it is random and long
enough not to be guessed (16 characters from a 31-letter alphabet: ~79 bits).

The complainant's name and phone number stay in the complaint case, which the
enterprise never sees; the enterprise meets only the deposit_freeze case that an
at-fault verdict starts.
"""

import logging
import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, deposits, ledger, rules
from engine.db import Base, session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.inbox import OVERSIGHT_GROUPS
from engine.models import Enterprise, Instance
from engine.services import service_operation
from engine.workdays import is_provisional

logger = logging.getLogger(__name__)

PROCESS = "complaint"
# Who may see the complaint list and the complainants' contact details.
STAFF_GROUPS = frozenset({"protection", "service"}) | OVERSIGHT_GROUPS

rules.KNOWN.update({
    "complaint.filings_per_hour": rules.RuleSpec(
        int, 10, N_("同一网络地址每小时最多可在网上提交的投诉数"), minimum=1),
})

STATUSES = {
    "filed": N_("已登记，待受理"),
    "accepted": N_("已受理，调查处理中"),
    "rejected": N_("不予受理"),
    "not_at_fault": N_("已办结：经营者无责任"),
    "at_fault": N_("已办结：经营者有责任，已先行赔付"),
    "terminated": N_("调解期限届满，调解终止"),
}
CHANNELS = {"web": N_("网上投诉"), "hotline": N_("热线电话")}

# No 0/O, 1/I/L: references are read out over the phone.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 16
_REFERENCE = re.compile(r"YJ([%s]{%d})" % (ALPHABET, REFERENCE_LENGTH))


class Complaint(Base):
    """One consumer complaint as the office and the complainant follow it."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="filed")
    product: Mapped[str | None] = mapped_column(String(32))
    label_code: Mapped[str | None] = mapped_column(String(200))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), index=True)
    complainant_name: Mapped[str] = mapped_column(String(64))
    complainant_phone: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    claimed_fen: Mapped[int | None] = mapped_column(BigInteger)
    awarded_fen: Mapped[int | None] = mapped_column(BigInteger)
    accept_by: Mapped[datetime | None] = mapped_column(DateTime)
    accept_by_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    mediation_by: Mapped[datetime | None] = mapped_column(DateTime)
    mediation_by_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # What the complainant is told about the outcome (a reason, the adjudication).
    outcome_note: Mapped[str | None] = mapped_column(Text)
    dispute_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    instance: Mapped[Instance] = relationship(foreign_keys=[instance_id])
    enterprise: Mapped[Enterprise | None] = relationship()

    @property
    def escalated(self):
        return self.escalated_at is not None

    @property
    def overdue(self):
        return (self.status == "filed" and self.accept_by is not None
                and self.accept_by < clock.now())


def new_reference():
    return "YJ" + "".join(secrets.choice(ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalize_reference(text):
    """The canonical reference from what a person typed ("yj-abcd efgh..."), or None."""
    cleaned = re.sub(r"[\s-]", "", str(text or "")).upper()
    return cleaned if _REFERENCE.fullmatch(cleaned) else None


def format_reference(reference):
    """Grouped for reading aloud: YJ-ABCD-EFGH-JKMN-PQRS."""
    body = reference[2:]
    return "YJ-" + "-".join(body[i:i + 4] for i in range(0, len(body), 4))


# -- filing and reading ------------------------------------------------------------------------

def file_complaint(values, actor=None):
    """Start a complaint case from validated start-form values; returns the Complaint.

    ``actor`` is None for a consumer on the public site, the hotline agent otherwise.
    """
    from engine import runtime

    instance = runtime.start_instance(PROCESS, actor, dict(values), title="消费投诉")
    complaint = complaint_of_instance(instance.id)
    logger.info("complaint %s filed (%s), case %s", complaint.id, complaint.channel,
                instance.id)
    return complaint


def complaint_of_instance(instance_id):
    complaint = session().scalars(select(Complaint).where(
        Complaint.instance_id == instance_id)).first()
    if complaint is None:
        raise NotFound("此案件没有对应的投诉")
    return complaint


def find_by_reference(text):
    """The complaint a reference names; 404 alike for malformed and unknown references."""
    reference = normalize_reference(text)
    complaint = session().scalars(select(Complaint).where(
        Complaint.reference == reference)).first() if reference else None
    if complaint is None:
        raise NotFound("未找到该投诉编号，请核对后重试")
    return complaint


def check_staff(user):
    if user.enterprise_id is not None or not user.group_ids & STAFF_GROUPS:
        raise Forbidden("只有品牌保护、客户服务和领导小组可以查看投诉")


def list_complaints(user, status=None, escalated=None, limit=200):
    check_staff(user)
    query = select(Complaint).order_by(Complaint.id.desc()).limit(limit)
    if status:
        query = query.where(Complaint.status == status)
    if escalated is not None:
        query = query.where(Complaint.escalated_at.is_not(None) if escalated
                            else Complaint.escalated_at.is_(None))
    return session().scalars(query).all()


# -- the diagram's effects ---------------------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None:
        raise ValidationFailed("投诉操作只能在案件中执行")
    return step


def _complaint(step):
    return complaint_of_instance(step.instance.id)


def _utc(value):
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


@service_operation
def register_complaint(task_data, **_params):
    """Record the complaint with a fresh reference and its acceptance deadline."""
    step = _step()
    reference = new_reference()
    while session().scalar(select(Complaint.id).where(Complaint.reference == reference)):
        reference = new_reference()
    accept_by = _utc(task_data["accept_by"])
    claimed = task_data.get("claimed_fen")

    complaint = Complaint(
        reference=reference, instance_id=step.instance.id,
        channel="web" if step.actor is None else "hotline", status="filed",
        product=task_data.get("product"), label_code=task_data.get("label_code"),
        enterprise_name=task_data.get("enterprise_name"),
        complainant_name=task_data.get("complainant_name") or "",
        complainant_phone=task_data.get("complainant_phone") or "",
        description=task_data.get("description") or "",
        claimed_fen=int(claimed) if claimed is not None else None,
        accept_by=accept_by, accept_by_provisional=is_provisional(accept_by),
        created_at=clock.now())
    session().add(complaint)
    session().flush()
    step.instance.title = f"消费投诉 {format_reference(reference)}"
    step.record("complaint_registered", complaint_id=complaint.id, channel=complaint.channel,
                accept_by=accept_by.isoformat() + "Z",
                provisional=complaint.accept_by_provisional)
    return reference


@service_operation
def enterprise_of_label(task_data, **_params):
    """The enterprise whose licence issued the label code the complainant gave, if any.

    A code counts only when it is exactly a label that was printed (same key and
    signature); the scan is not counted, since this is not a verification.
    """
    from engine import labelcodes, labels

    parsed = labelcodes.decode(str(task_data.get("label_code") or "").strip().upper())
    if parsed is None:
        return None
    label = session().get(labels.Label, parsed.serial)
    if label is None or label.batch.key_id != parsed.key_id or \
            bytes(label.signature) != parsed.signature:
        return None
    enterprise_id = label.batch.licence.enterprise_id
    complaint = _complaint(_step())
    complaint.enterprise_id = enterprise_id
    return enterprise_id


@service_operation
def mark_complaint_escalated(task_data, **_params):
    """The acceptance deadline passed: the complaint is escalated to leadership."""
    step = _step()
    complaint = _complaint(step)
    complaint.escalated_at = complaint.escalated_at or clock.now()
    step.record("complaint_escalated", reference=complaint.reference)
    logger.info("complaint %s escalated: not accepted by %s", complaint.id,
                complaint.accept_by)
    return True


def _close(complaint, status, note):
    complaint.status = status
    complaint.outcome_note = str(note or "")[:2000] or None
    complaint.closed_at = clock.now()


@service_operation
def reject_complaint(task_data, reason=None, **_params):
    step = _step()
    complaint = _complaint(step)
    _close(complaint, "rejected", reason)
    step.record("complaint_rejected")
    return complaint.status


@service_operation
def accept_complaint(task_data, **_params):
    """Accepted: bind the enterprise complained about and start the mediation period."""
    step = _step()
    complaint = _complaint(step)
    enterprise = session().get(Enterprise, task_data.get("enterprise_id") or 0)
    if enterprise is None:
        unknown = N_("没有此编号的企业")
        raise ValidationFailed("涉诉企业不存在", fields={"enterprise_id": [unknown]})
    mediation_by = _utc(task_data["mediation_by"])

    complaint.enterprise_id = enterprise.id
    complaint.status = "accepted"
    complaint.accepted_at = clock.now()
    complaint.mediation_by = mediation_by
    complaint.mediation_by_provisional = is_provisional(mediation_by)
    step.record("complaint_accepted", enterprise=enterprise.name,
                mediation_by=mediation_by.isoformat() + "Z",
                provisional=complaint.mediation_by_provisional)
    return complaint.status


@service_operation
def terminate_mediation(task_data, **_params):
    step = _step()
    complaint = _complaint(step)
    _close(complaint, "terminated", None)
    step.record("mediation_terminated")
    return complaint.status


@service_operation
def close_complaint_not_at_fault(task_data, **_params):
    step = _step()
    complaint = _complaint(step)
    _close(complaint, "not_at_fault", task_data.get("adjudication_note"))
    step.record("complaint_closed", verdict="not_at_fault")
    return complaint.status


@service_operation
def pay_consumer_in_advance(task_data, **_params):
    """At fault: pay the consumer out of the deposit now and start claiming it back.

    The advance (``paid_out``) and the freeze of the deposit_freeze case it starts land
    in this step or not at all; more than the deposit can cover is refused on the
    amount field, so protection can correct it.
    """
    step = _step()
    complaint = _complaint(step)
    amount = int(task_data.get("awarded_fen") or 0)
    enterprise = ledger.get_enterprise(complaint.enterprise_id)
    available = ledger.position(enterprise.id).available_fen
    if amount <= 0 or amount > available:
        too_much = N_("超过该企业保证金可用余额")
        raise ValidationFailed("先行垫付金额超过保证金可用余额",
                               fields={"awarded_fen": [too_much]}, available_fen=available)

    # The enterprise reads these texts: they name the complaint by its number, never by the
    # reference that opens the complainant's status page.
    try:
        ledger.pay_out(enterprise.id, amount, instance_id=step.instance.id,
                       approved_by=getattr(step.actor, "id", None),
                       note=f"先行垫付：消费投诉第 {complaint.id} 号")
        reason = f"消费投诉第 {complaint.id} 号经判定经营者有责任，已从保证金中先行垫付"
        dispute = deposits.start_dispute(enterprise.id, amount, reason, step.actor,
                                         advance_fen=amount, complaint_id=complaint.id)
    except Conflict as exc:
        # Another step took the deposit meanwhile: the same answer as above, on the field.
        too_much = N_("超过该企业保证金可用余额")
        raise ValidationFailed("先行垫付金额超过保证金可用余额",
                               fields={"awarded_fen": [too_much]}, **exc.details) from exc

    complaint.awarded_fen = amount
    complaint.dispute_instance_id = dispute.id
    _close(complaint, "at_fault", task_data.get("adjudication_note"))
    step.record("paid_in_advance", amount_fen=amount, dispute_case=dispute.id)
    return dispute.id
