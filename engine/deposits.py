"""Deposit freezing (保证金冻结/扣缴/追加): the dispute record and the effects its diagram calls.

A dispute is one ``deposit_freeze`` case, started by an at-fault complaint (which has
already paid the consumer out of the deposit: ``advance_fen``) or by quality staff
after a failed inspection. Its diagram freezes the disputed amount, gives the
enterprise a deadline to settle, and on settlement recovers the advance and
unfreezes; without settlement it deducts the frozen amount and demands a top-up to
the required level by a second deadline, then escalates to leadership. The deadlines
are the diagram's; how many disputes in how many days make a repeat offender are
rules (``engine.rules``).

Every ledger entry names this case and who approved it: the person whose task
completion ran the step, or, for a step a timer ran, whoever opened the dispute
(the freeze they ordered is what the deadline enforces).
"""

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, ledger, rules
from engine.db import Base, session
from engine.errors import N_, NotFound, ValidationFailed
from engine.models import Enterprise, Instance
from engine.services import service_operation
from engine.workdays import is_provisional

logger = logging.getLogger(__name__)

PROCESS = "deposit_freeze"

rules.KNOWN.update({
    "deposit.repeat_dispute_count": rules.RuleSpec(
        int, 3, N_("同一企业在统计期间内的保证金纠纷达到此次数即报领导小组"), minimum=1),
    "deposit.repeat_dispute_days": rules.RuleSpec(
        int, 365, N_("统计保证金纠纷次数的期间（天）"), minimum=1),
})

STATUSES = {
    "frozen": N_("已冻结，待企业和解"),
    "settled": N_("已和解，保证金已解冻"),
    "deducted": N_("已扣缴，待企业补足保证金"),
    "restored": N_("已扣缴，保证金已补足"),
    "overdue": N_("逾期未补足，已报领导小组"),
}
ESCALATIONS = {
    "repeat": N_("一年内多次纠纷"),
    "top_up_overdue": N_("逾期未补足保证金"),
    "confirmation_overdue": N_("财务确认超期"),
}
DECISIONS = {
    "expel": N_("启动强制清退程序"),
    "warn": N_("约谈警告，责令整改"),
    "no_action": N_("暂不处理"),
}


class DepositDispute(Base):
    """One deposit_freeze case as finance and the enterprise follow it."""

    __tablename__ = "deposit_disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    # complaint or inspection
    source: Mapped[str] = mapped_column(String(16))
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    disputed_fen: Mapped[int] = mapped_column(BigInteger)
    # Paid to the consumer before this case started; the enterprise owes it back.
    advance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="frozen")
    settle_by: Mapped[datetime | None] = mapped_column(DateTime)
    settle_by_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    top_up_fen: Mapped[int | None] = mapped_column(BigInteger)
    top_up_by: Mapped[datetime | None] = mapped_column(DateTime)
    top_up_by_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalation: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    enterprise: Mapped[Enterprise] = relationship()
    instance: Mapped[Instance] = relationship()

    __table_args__ = (
        CheckConstraint("disputed_fen > 0 AND advance_fen >= 0 AND advance_fen <= disputed_fen",
                        name="amounts"),
        CheckConstraint("status in ('frozen', 'settled', 'deducted', 'restored', 'overdue')",
                        name="status"),
        CheckConstraint("source in ('complaint', 'inspection')", name="source"),
    )


# -- starting a dispute ------------------------------------------------------------------------

def start_dispute(enterprise_id, disputed_fen, reason, actor, advance_fen=0,
                  complaint_id=None):
    """Start a deposit_freeze case for an enterprise (from another case's step).

    It runs as its own case in the caller's transaction: its freeze lands with the step
    that caused it, or neither does.
    """
    from engine import runtime

    enterprise = ledger.get_enterprise(enterprise_id)
    data = {"enterprise_id": enterprise.id, "disputed_fen": int(disputed_fen),
            "dispute_reason": str(reason or "")[:2000], "advance_fen": int(advance_fen),
            "complaint_id": complaint_id,
            "dispute_source": "complaint" if complaint_id else "inspection"}
    instance = runtime.start_instance(PROCESS, actor, data, enterprise_id=enterprise.id,
                                      title=_title(enterprise))
    logger.info("dispute case %s started for enterprise %s (%s fen)", instance.id,
                enterprise.id, disputed_fen)
    return instance


def _title(enterprise):
    return f"保证金冻结：{enterprise.name}"


# -- the diagram's effects ---------------------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None:
        raise ValidationFailed("保证金操作只能在案件中执行")
    return step


def _dispute(step):
    dispute = session().scalars(select(DepositDispute).where(
        DepositDispute.instance_id == step.instance.id)).first()
    if dispute is None:
        raise NotFound("此案件没有对应的保证金争议")
    return dispute


def _entry(step, dispute, kind, amount, note):
    # The person whose step caused the entry approved it; a step a timer ran (a deadline
    # passing) names nobody, rather than whoever opened the dispute.
    return ledger.post(dispute.enterprise_id, kind, amount, instance_id=step.instance.id,
                       approved_by=getattr(step.actor, "id", None), note=note)


def _deadline(value):
    """A timer's ISO deadline from task data as naive UTC."""
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


@service_operation
def open_dispute(task_data, **_params):
    """Record the dispute; a case started by quality staff is bound to its enterprise here."""
    step = _step()
    enterprise_id = task_data.get("enterprise_id")
    enterprise = session().get(Enterprise, enterprise_id) if enterprise_id else None
    if enterprise is None or enterprise.status not in ("admitted", "expelled"):
        unknown = N_("不是已准入企业的编号")
        raise ValidationFailed("企业不存在或尚未准入", fields={"enterprise_id": [unknown]})
    disputed = int(task_data["disputed_fen"])
    advance = int(task_data.get("advance_fen") or 0)

    if step.instance.enterprise_id is None:
        step.instance.enterprise_id = enterprise.id
        step.instance.title = _title(enterprise)
    dispute = DepositDispute(
        instance_id=step.instance.id, enterprise_id=enterprise.id,
        source=task_data.get("dispute_source") or "inspection",
        complaint_id=task_data.get("complaint_id"), reason=task_data.get("dispute_reason") or "",
        disputed_fen=disputed, advance_fen=advance, status="frozen",
        opened_by=getattr(step.actor, "id", None), created_at=clock.now())
    session().add(dispute)
    session().flush()
    step.record("dispute_opened", dispute_id=dispute.id, disputed_fen=disputed,
                advance_fen=advance)
    return dispute.id


def recent_dispute_count(enterprise_id, now=None):
    """Disputes of the enterprise opened within the rule's period, this one included."""
    now = now or clock.now()
    days = rules.get_rule("deposit.repeat_dispute_days")
    return session().scalar(select(func.count(DepositDispute.id)).where(
        DepositDispute.enterprise_id == enterprise_id,
        DepositDispute.created_at >= now - timedelta(days=days)))


@service_operation
def is_repeat_dispute(task_data, **_params):
    """Whether this dispute makes the enterprise a repeat offender (a rule staff edit)."""
    step = _step()
    dispute = _dispute(step)
    count = recent_dispute_count(dispute.enterprise_id)
    threshold = rules.get_rule("deposit.repeat_dispute_count")
    step.record("dispute_count", count=count, threshold=threshold)
    return count >= threshold


@service_operation
def freeze_disputed_amount(task_data, **_params):
    step = _step()
    dispute = _dispute(step)
    _entry(step, dispute, "frozen", dispute.disputed_fen, dispute.reason)
    step.record("deposit_frozen", amount_fen=dispute.disputed_fen)
    return dispute.disputed_fen


@service_operation
def notify_enterprise_of_freeze(task_data, **_params):
    """The enterprise now sees the settlement task; keep its deadline on the dispute."""
    step = _step()
    dispute = _dispute(step)
    dispute.settle_by = _deadline(task_data["settle_by"])
    dispute.settle_by_provisional = is_provisional(dispute.settle_by)
    step.record("settlement_deadline", settle_by=dispute.settle_by.isoformat() + "Z",
                provisional=dispute.settle_by_provisional)
    return dispute.status


@service_operation
def settle_dispute(task_data, **_params):
    """Settled in time: the advance is recovered from the enterprise and the freeze lifted."""
    step = _step()
    dispute = _dispute(step)
    reference = task_data.get("settlement_reference")
    if dispute.advance_fen:
        _entry(step, dispute, "recovered", dispute.advance_fen, reference)
    _entry(step, dispute, "unfrozen", dispute.disputed_fen, reference)
    dispute.status = "settled"
    dispute.closed_at = clock.now()
    step.record("dispute_settled", recovered_fen=dispute.advance_fen,
                unfrozen_fen=dispute.disputed_fen)
    return dispute.status


@service_operation
def deduct_disputed_amount(task_data, **_params):
    """Not settled: the frozen amount repays the advance for good; returns the top-up due.

    A dispute without an advance (an inspection failure) pays the amount out now, so that
    the deduction always repays money that left the deposit account for a consumer.
    """
    step = _step()
    dispute = _dispute(step)
    unpaid = dispute.disputed_fen - dispute.advance_fen
    if unpaid:
        _entry(step, dispute, "paid_out", unpaid, dispute.reason)
    _entry(step, dispute, "deducted", dispute.disputed_fen, "和解期限届满，扣缴")

    enterprise = ledger.get_enterprise(dispute.enterprise_id)
    dispute.top_up_fen = ledger.shortfall(enterprise)
    dispute.status = "deducted" if dispute.top_up_fen else "restored"
    if not dispute.top_up_fen:
        dispute.closed_at = clock.now()
    step.record("deposit_deducted", amount_fen=dispute.disputed_fen, paid_out_fen=unpaid,
                top_up_fen=dispute.top_up_fen)
    return dispute.top_up_fen


@service_operation
def demand_deposit_top_up(task_data, **_params):
    step = _step()
    dispute = _dispute(step)
    dispute.top_up_by = _deadline(task_data["top_up_by"])
    dispute.top_up_by_provisional = is_provisional(dispute.top_up_by)
    step.record("top_up_demanded", top_up_fen=dispute.top_up_fen,
                top_up_by=dispute.top_up_by.isoformat() + "Z",
                provisional=dispute.top_up_by_provisional)
    return dispute.status


@service_operation
def record_top_up(task_data, **_params):
    """Finance confirmed a top-up payment; returns what is still missing."""
    step = _step()
    dispute = _dispute(step)
    amount = int(task_data.get("top_up_received_fen") or 0)
    _entry(step, dispute, "topped_up", amount, task_data.get("top_up_reference"))

    enterprise = ledger.get_enterprise(dispute.enterprise_id)
    dispute.top_up_fen = ledger.shortfall(enterprise)
    if not dispute.top_up_fen:
        dispute.status = "restored"
        dispute.closed_at = clock.now()
    step.record("deposit_topped_up", amount_fen=amount, still_missing_fen=dispute.top_up_fen)
    return dispute.top_up_fen


@service_operation
def escalate_dispute(task_data, reason=None, **_params):
    """Mark the dispute escalated to leadership (a repeat offender, or a top-up overdue)."""
    step = _step()
    dispute = _dispute(step)
    if reason not in ESCALATIONS:
        raise ValueError(f"unknown escalation reason {reason!r}")
    dispute.escalated_at = dispute.escalated_at or clock.now()
    dispute.escalation = reason
    if reason == "top_up_overdue":
        dispute.status = "overdue"
    step.record("dispute_escalated", reason=reason)
    logger.info("dispute %s of enterprise %s escalated: %s", dispute.id, dispute.enterprise_id,
                reason)
    return reason


# Why leadership was asked (the escalation) names the grounds of an expulsion it orders.
EXPULSION_GROUNDS = {
    "repeat": "repeated_violations",
    "top_up_overdue": "unpaid_dues",
    "confirmation_overdue": "unpaid_dues",
}


@service_operation
def record_leadership_decision(task_data, reason=None, **_params):
    """Keep leadership's decision and carry it out: ``expel`` starts an ``expulsion`` case
    for the enterprise in this same step (grounds from the escalation, evidence from the
    dispute), so the decision and the case land together or not at all."""
    step = _step()
    dispute = _dispute(step)
    decision = task_data.get("dispute_decision")
    if decision not in DECISIONS:
        invalid = N_("请从列表中选择")
        raise ValidationFailed("决定无效", fields={"dispute_decision": [invalid]})
    dispute.decision = decision
    dispute.decision_note = str(task_data.get("dispute_decision_note") or "")[:2000]
    dispute.decided_by = getattr(step.actor, "id", None)
    dispute.decided_at = clock.now()
    step.record("leadership_decision", reason=reason, decision=decision)
    if decision == "expel":
        case = _start_expulsion(step, dispute, reason)
        step.record("expulsion_started", expulsion_case=case.id)
    return decision


def _start_expulsion(step, dispute, reason):
    from engine import expulsion, runtime

    shortfall = ledger.shortfall(dispute.enterprise)
    evidence = (f"保证金纠纷（案件 {step.instance.id}）：{dispute.reason or '未注明'}；"
                f"争议金额 {dispute.disputed_fen} 分，"
                f"保证金尚缺 {shortfall} 分；"
                f"报领导小组原因：{ESCALATIONS.get(reason, reason or '')}。")
    if dispute.decision_note:
        evidence += f"领导小组意见：{dispute.decision_note}"
    data = {"enterprise_id": dispute.enterprise_id,
            "grounds": EXPULSION_GROUNDS.get(reason, "repeated_violations"),
            "evidence": evidence[:5000], "attachments": f"保证金冻结案件 {step.instance.id}"}
    # The expulsion's own start rule: leadership may start it, one running case at a time
    # (a second one is refused with 409, and the decision stays open).
    try:
        expulsion.check_can_start_expulsion(step.actor, None, data)
    except ValidationFailed as exc:
        not_admitted = N_("该企业已不是已准入企业，不能启动强制清退")
        raise ValidationFailed("不能启动强制清退",
                               fields={"dispute_decision": [not_admitted]}) from exc
    return runtime.start_instance(expulsion.PROCESS, step.actor, data,
                                  enterprise_id=dispute.enterprise_id)


# -- reading -----------------------------------------------------------------------------------

def disputes_of(enterprise_id):
    return session().scalars(select(DepositDispute).where(
        DepositDispute.enterprise_id == enterprise_id)
        .order_by(DepositDispute.id.desc())).all()


def dispute_of_instance(instance_id):
    return session().scalars(select(DepositDispute).where(
        DepositDispute.instance_id == instance_id)).first()
