"""Forced expulsion (强制清退): the case record, the bar on reapplying, and the effects the
``expulsion`` diagram calls.

A case names an enterprise and its grounds; the general department reviews it, the
enterprise is heard (it may submit a statement until a deadline), and leadership
decides. Approval runs ``expel_enterprise`` as one step, so that every effect lands
in one transaction or none does: every licence revoked, every open label batch
cancelled, the deposit settled (outstanding claims deducted, the rest frozen
pending legal liability, each as a ledger entry naming the case), the enterprise
expelled and barred from reapplying for ``expulsion.bar_years`` years, and a public
notice published. Each effect is recorded in the case history.
"""

import logging
from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, ledger, notices, rules
from engine.db import Base, session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.labels import LabelBatch, revoke_licence
from engine.licensing import Licence
from engine.models import Enterprise
from engine.services import (
    deadline_in_working_days,
    service_operation,
    start_guard,
    starters,
)

logger = logging.getLogger(__name__)

PROCESS = "expulsion"
STARTERS = frozenset({"protection", "office", "leadership"})
GROUNDS = {
    "quality_harm": N_("产品质量问题损害消费者权益"),
    "social_responsibility": N_("社会责任问题损害品牌形象"),
    "unpaid_dues": N_("拒不缴纳应缴费用"),
    "repeated_violations": N_("多次违规"),
}
STATUSES = {
    "review": N_("综合管理审查中"),
    "hearing": N_("听证中，等待企业陈述"),
    "deciding": N_("待领导小组决定"),
    "dismissed": N_("审查未通过，不予立案"),
    "rejected": N_("领导小组不予清退"),
    "sanctioned": N_("从轻处理：扣缴保证金"),
    "expelled": N_("已清退"),
}

rules.KNOWN.update({
    "expulsion.bar_years": rules.RuleSpec(
        int, 3, N_("被强制清退的企业在此年限内不得重新申请准入"), minimum=1),
    "expulsion.hearing_working_days": rules.RuleSpec(
        int, 10, N_("强制清退听证中企业提交陈述的期限（工作日）"), minimum=1),
})


class Expulsion(Base):
    """One expulsion case as the office follows it."""

    __tablename__ = "expulsions"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    grounds: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="review")
    hearing_due: Mapped[datetime | None] = mapped_column(DateTime)
    statement: Mapped[str | None] = mapped_column(Text)
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    barred_until: Mapped[datetime | None] = mapped_column(DateTime)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    enterprise: Mapped[Enterprise] = relationship()

    __table_args__ = (
        CheckConstraint("grounds in ('quality_harm', 'social_responsibility', 'unpaid_dues', "
                        "'repeated_violations')", name="grounds"),
        CheckConstraint("status in ('review', 'hearing', 'deciding', 'dismissed', 'rejected', "
                        "'sanctioned', 'expelled')", name="status"),
    )


# -- who may start, and the bar on reapplying --------------------------------------------------

@starters(PROCESS)
def may_start(user):
    return user.enterprise_id is None and bool(user.group_ids & STARTERS)


@start_guard(PROCESS)
def check_can_start_expulsion(user, enterprise, data):
    """Protection, office or leadership staff, against an admitted enterprise."""
    if enterprise is not None or not may_start(user):
        raise Forbidden("只有品牌保护、品牌管理办公室或领导小组可以发起强制清退")
    _target(data.get("enterprise_id"))


def _target(enterprise_id):
    enterprise = session().get(Enterprise, enterprise_id) if enterprise_id else None
    if enterprise is None or enterprise.status != "admitted":
        unknown = N_("不是已准入企业的编号")
        raise ValidationFailed("企业不存在或不是已准入企业",
                               fields={"enterprise_id": [unknown]})
    running = session().scalar(select(Expulsion.id).where(
        Expulsion.enterprise_id == enterprise.id,
        Expulsion.status.in_(("review", "hearing", "deciding"))).limit(1))
    if running is not None:
        raise Conflict("该企业已有正在办理的清退案件", expulsion_id=running)
    return enterprise


def barred_until(enterprise):
    """Until when an expelled enterprise may not reapply (naive UTC), or None."""
    if enterprise is None or enterprise.status != "expelled":
        return None
    until = session().scalar(select(Expulsion.barred_until).where(
        Expulsion.enterprise_id == enterprise.id, Expulsion.status == "expelled")
        .order_by(Expulsion.barred_until.desc()).limit(1))
    return until if until is not None and until > clock.now() else None


def refuse_if_barred(enterprise):
    """Called by the admission start guard: no application during the bar."""
    until = barred_until(enterprise)
    if until is not None:
        raise Conflict("该企业已被强制清退，禁入期内不得重新申请准入",
                       barred_until=until.date().isoformat())


# -- the diagram's effects ---------------------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None:
        raise ValidationFailed("清退操作只能在案件中执行")
    return step


def _case(step):
    case = session().scalars(select(Expulsion).where(
        Expulsion.instance_id == step.instance.id)).first()
    if case is None:
        raise NotFound("此案件没有对应的清退记录")
    return case


def _approver(step, case):
    # Only the person whose step this is approves its ledger entries: a step a timer ran
    # names nobody, never the case's opener.
    return getattr(step.actor, "id", None)


@service_operation
def open_expulsion_case(task_data, **_params):
    """Record the case and bind it to the enterprise (whose tasks it then shows)."""
    step = _step()
    enterprise = _target(task_data.get("enterprise_id"))
    step.instance.enterprise_id = enterprise.id
    step.instance.title = f"强制清退：{enterprise.name}"
    case = Expulsion(instance_id=step.instance.id, enterprise_id=enterprise.id,
                     grounds=task_data["grounds"], evidence=task_data.get("evidence") or "",
                     attachments=task_data.get("attachments") or "", status="review",
                     opened_by=getattr(step.actor, "id", None), created_at=clock.now())
    session().add(case)
    session().flush()
    step.record("expulsion_opened", expulsion_id=case.id, enterprise_id=enterprise.id,
                grounds=case.grounds)
    return case.status


@service_operation
def dismiss_expulsion_case(task_data, **_params):
    step = _step()
    case = _case(step)
    case.status = "dismissed"
    case.decision_note = str(task_data.get("review_comment") or "")[:2000]
    step.record("expulsion_dismissed", reason=case.decision_note)
    return case.status


@service_operation
def open_hearing_period(task_data, **_params):
    """The enterprise is notified; returns its statement deadline (the timer's expression)."""
    step = _step()
    case = _case(step)
    due = deadline_in_working_days(rules.get_rule("expulsion.hearing_working_days"))
    case.status = "hearing"
    case.hearing_due = datetime.fromisoformat(due).replace(tzinfo=None)
    step.record("hearing_opened", statement_due=case.hearing_due.isoformat() + "Z")
    return due


@service_operation
def record_hearing_outcome(task_data, statement_given=False, **_params):
    """The hearing closed, with the enterprise's statement or after its deadline passed."""
    step = _step()
    case = _case(step)
    case.status = "deciding"
    if statement_given:
        case.statement = str(task_data.get("statement") or "")[:5000]
        step.record("statement_received", length=len(case.statement))
    else:
        step.record("statement_missing", deadline=case.hearing_due.isoformat() + "Z")
    return case.status


def _decided(step, case, status, task_data):
    case.status = status
    case.decided_by = getattr(step.actor, "id", None)
    case.decided_at = clock.now()
    case.decision_note = str(task_data.get("decision_note") or "")[:2000]


@service_operation
def reject_expulsion(task_data, **_params):
    """Leadership decided against any sanction: nothing changes but the record."""
    step = _step()
    case = _case(step)
    _decided(step, case, "rejected", task_data)
    step.record("expulsion_rejected", reason=case.decision_note)
    return case.status


@service_operation
def impose_deposit_deduction(task_data, **_params):
    """A lesser sanction: ``sanction_fen`` leaves the deposit for good.

    Entered the way the deposit ledger records a deduction without a consumer advance:
    frozen for this case, paid out, then deducted (see ``deposits.deduct_disputed_amount``).
    The ledger refuses (409) an amount above what is available; the task stays open.
    """
    step = _step()
    case = _case(step)
    amount = task_data.get("sanction_fen")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        missing = N_("从轻处理须填写大于零的扣缴金额")
        raise ValidationFailed("扣缴金额无效", fields={"sanction_fen": [missing]})
    _decided(step, case, "sanctioned", task_data)
    approver = _approver(step, case)
    for kind in ("frozen", "paid_out", "deducted"):
        ledger.post(case.enterprise_id, kind, amount, instance_id=step.instance.id,
                    approved_by=approver, note="强制清退案件从轻处理：扣缴保证金")
    step.record("deposit_sanction", amount_fen=amount)
    return case.status


@service_operation
def expel_enterprise(task_data, **_params):
    """Approved: revoke, cancel, settle, expel, bar and publish, in this one step."""
    step = _step()
    case = _case(step)
    enterprise = session().get(Enterprise, case.enterprise_id)
    if enterprise.status == "expelled":
        raise Conflict("该企业已被清退", enterprise_id=enterprise.id)
    _decided(step, case, "expelled", task_data)
    reason = f"强制清退（案件 {step.instance.id}）"

    _revoke_licences(step, enterprise, reason)
    _settle_deposit(step, case, enterprise)

    now = clock.now()
    years = rules.get_rule("expulsion.bar_years")
    case.barred_until = now + timedelta(days=365 * years + years // 4)
    enterprise.status = "expelled"
    enterprise.status_reason = GROUNDS[case.grounds]
    step.record("enterprise_expelled", enterprise_id=enterprise.id,
                barred_until=case.barred_until.date().isoformat(), bar_years=years)

    notice = notices.publish("expulsion", f"关于清退{enterprise.name}的公示",
                             _notice_body(enterprise, case), step.actor,
                             instance_id=step.instance.id, enterprise_id=enterprise.id)
    case.notice_id = notice.id
    step.record("notice_published", notice_id=notice.id, number=notice.number)
    session().flush()
    logger.warning("enterprise %s expelled by case %s", enterprise.id, step.instance.id)
    return case.status


def _revoke_licences(step, enterprise, reason):
    licences = session().scalars(select(Licence).where(
        Licence.enterprise_id == enterprise.id, Licence.status == "active")).all()
    for licence in licences:
        revoke_licence(licence, None, reason)
        step.record("licence_revoked", licence_id=licence.id, number=licence.number)

    # Cancelled here rather than through labels.cancel_label_batch, which only the holder
    # or the market department may call: the leadership decision is the authority.
    licence_ids = select(Licence.id).where(Licence.enterprise_id == enterprise.id)
    batch_ids = session().scalars(select(LabelBatch.id).where(
        LabelBatch.licence_id.in_(licence_ids), LabelBatch.status == "active")).all()
    if batch_ids:
        session().execute(
            update(LabelBatch).where(LabelBatch.id.in_(batch_ids))
            .values(status="cancelled", cancelled_at=clock.now(),
                    cancelled_by=getattr(step.actor, "id", None), cancel_reason=reason)
            .execution_options(synchronize_session=False))
        step.record("label_batches_cancelled", batch_ids=list(batch_ids))


def _settle_deposit(step, case, enterprise):
    """Outstanding claims (advances paid for the enterprise) are deducted from what is
    available; everything left available is frozen for this case pending legal liability.
    Amounts other cases hold frozen stay with those cases."""
    approver = _approver(step, case)
    entry = {"instance_id": step.instance.id, "approved_by": approver}
    current = ledger.position(enterprise.id)

    claims = min(current.advanced_fen, current.available_fen)
    if claims > 0:
        ledger.freeze(enterprise.id, claims, note="强制清退：冻结待扣缴的垫付款", **entry)
        ledger.deduct(enterprise.id, claims, note="强制清退：扣缴先行垫付款", **entry)

    rest = ledger.position(enterprise.id).available_fen
    if rest > 0:
        ledger.freeze(enterprise.id, rest, note="强制清退：余额冻结，待追究法律责任", **entry)
    step.record("deposit_settled", claims_deducted_fen=claims, frozen_fen=max(rest, 0),
                outstanding_claims_fen=current.advanced_fen - claims)


def _notice_body(enterprise, case):
    paragraphs = [
        f"经盈江县区域公共品牌管理领导小组决定，{enterprise.name}"
        f"因{GROUNDS[case.grounds]}，自即日起被强制清退，撤销其全部品牌授权。",
        "该企业此前取得的品牌防伪标签一律作废，扫码查验将显示为已撤销。"
        "请消费者注意识别，如有疑问可通过品牌门户投诉。",
        f"该企业在 {case.barred_until.date().isoformat()} 之前不得重新申请品牌准入。",
    ]
    if case.decision_note:
        paragraphs.append(f"决定意见：{case.decision_note}")
    return "\n\n".join(paragraphs)


# -- reading -----------------------------------------------------------------------------------

def get_case(instance_id):
    case = session().scalars(select(Expulsion).where(
        Expulsion.instance_id == instance_id)).first()
    if case is None:
        raise NotFound("清退案件不存在", instance_id=instance_id)
    return case
