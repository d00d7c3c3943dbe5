"""Royalty collection (品牌权费): one ``royalty`` case per licence per period, and its ledger.

Processors and sellers (``ROYALTY_KINDS``) pay a royalty on what they sold under the
brand: the licence's rate (``Licence.royalty_basis_points``, 25 = 0.25 %) of the sales
they declare for each period. Money is integer fen; the royalty is rounded half up to
the fen: ``royalty_fen = floor((sales_fen * basis_points + 5000) / 10000)``.

How a period opens. The issue asks for a timer start event. SpiffWorkflow runs a timer
start event only inside a workflow that already exists, so something must create one
case per licence per period anyway; that host is the timer scheduler. Every run of
``engine.timers.fire_due_timers`` (the in-process scheduler, ``flask fire-timers``, the
virtual clock) first runs the periodic jobs that domain modules register with
``services.periodic_job``; ours, ``open_due_periods``, starts a case for every active
licence of a processor or seller that was active in the period that ended last and has
no royalty for it yet. The period length is the rule ``royalty.period_months`` (3,
quarterly, by default; periods are aligned on 1 January, Beijing time). A period opens
at Beijing midnight after its last day. The job is idempotent: a second run finds the
rows, and the unique (licence, period start) pair refuses a racing second writer.

The ``royalty`` diagram then runs: the enterprise declares units and sales; the
declaration is checked against the labels issued for the licence (units sold cannot
exceed labels issued by the period's end and not cancelled, less units declared for
earlier periods: a larger declaration is flagged ``oversized`` for finance) and against
scans (fewer units than labels first scanned in the period is flagged ``undersized``);
finance accepts it or sends it back; the royalty is assessed and must be paid within
``royalty.payment_working_days``; unpaid, the enterprise is reminded and given
``royalty.reminder_working_days`` more; still unpaid, leadership decides: deduct it
from the deposit (ledger entries frozen, paid out to the office, deducted, naming the
case), extend the deadline, or start an expulsion case for unpaid dues.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    and_,
    case,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, ledger, rules
from engine.db import Base, session
from engine.errors import N_, BrandError, Forbidden, NotFound, ValidationFailed
from engine.licensing import Licence
from engine.models import Enterprise, Instance
from engine.services import (
    deadline_in_working_days,
    periodic_job,
    service_operation,
    start_guard,
    starters,
)
from engine.workdays import is_provisional

logger = logging.getLogger(__name__)

PROCESS = "royalty"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Enterprise kinds that pay a royalty: processors and sellers (the plan's 加工企业和销售企业).
ROYALTY_KINDS = frozenset({"processor", "retailer"})
# Staff who see every enterprise's royalties and the office's yearly totals.
ROYALTY_STAFF = frozenset({"finance", "office", "leadership", "market"})
PERIOD_MONTHS = (1, 2, 3, 4, 6, 12)

rules.KNOWN.update({
    "royalty.period_months": rules.RuleSpec(
        int, 3, N_("品牌权费的征收周期（月）：1、2、3、4、6 或 12，自每年 1 月 1 日起算"),
        minimum=1, choices=PERIOD_MONTHS),
    "royalty.declaration_working_days": rules.RuleSpec(
        int, 10, N_("周期结束后企业申报销售额的期限（工作日），逾期报领导小组督办"), minimum=1),
    "royalty.payment_working_days": rules.RuleSpec(
        int, 15, N_("财务核定权费后企业缴纳的期限（工作日）"), minimum=1),
    "royalty.reminder_working_days": rules.RuleSpec(
        int, 5, N_("逾期催缴后再给企业的缴纳期限（工作日），仍未缴纳即报领导小组"), minimum=1),
})

STATUSES = {
    "declaring": N_("待企业申报销售额"),
    "checking": N_("待财务核对申报"),
    "due": N_("待缴纳"),
    "overdue": N_("逾期，已催缴"),
    "escalated": N_("逾期未缴，已报领导小组"),
    "paid": N_("已缴纳"),
    "deducted": N_("已从保证金扣缴"),
}
FLAGS = {
    "oversized": N_("申报数量超过已发放标签可覆盖的数量"),
    "undersized": N_("申报数量少于本期首次扫码的标签数"),
}
DECISIONS = {
    "deduct": N_("从履约保证金中扣缴"),
    "extend": N_("宽限，重新限期缴纳"),
    "expel": N_("启动强制清退程序"),
}
# Assessed royalties that count as collected, and as still owed.
COLLECTED = ("paid", "deducted")
OUTSTANDING = ("due", "overdue", "escalated")


class Royalty(Base):
    """The royalty of one licence for one period: declaration, assessment, payment.

    ``due_on`` is the payment deadline (naive UTC, the end of a working day in Beijing);
    ``paid_at`` is when finance confirmed the payment, or when leadership's deduction from
    the deposit settled it (``status`` says which).
    """

    __tablename__ = "royalties"

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="declaring")
    royalty_basis_points: Mapped[int] = mapped_column(Integer)
    declare_by: Mapped[datetime | None] = mapped_column(DateTime)
    declared_units: Mapped[int | None] = mapped_column(BigInteger)
    declared_sales_fen: Mapped[int | None] = mapped_column(BigInteger)
    declared_at: Mapped[datetime | None] = mapped_column(DateTime)
    # What the labels allowed and what was scanned when the declaration was checked.
    labels_available: Mapped[int | None] = mapped_column(BigInteger)
    labels_scanned: Mapped[int | None] = mapped_column(BigInteger)
    flag: Mapped[str | None] = mapped_column(String(16))
    royalty_fen: Mapped[int | None] = mapped_column(BigInteger)
    due_on: Mapped[datetime | None] = mapped_column(DateTime)
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    payment_reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)

    licence: Mapped[Licence] = relationship()
    enterprise: Mapped[Enterprise] = relationship()
    instance: Mapped[Instance] = relationship()

    __table_args__ = (
        UniqueConstraint("licence_id", "period_start", name="uq_royalties_licence_period"),
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("royalty_basis_points >= 0", name="rate"),
        CheckConstraint("declared_sales_fen IS NULL OR declared_sales_fen >= 0",
                        name="sales_not_negative"),
        CheckConstraint("declared_units IS NULL OR declared_units >= 0",
                        name="units_not_negative"),
        CheckConstraint("royalty_fen IS NULL OR royalty_fen >= 0", name="royalty_not_negative"),
        CheckConstraint("status in ('declaring', 'checking', 'due', 'overdue', 'escalated', "
                        "'paid', 'deducted')", name="status"),
    )

    @property
    def overdue(self):
        return (self.status in OUTSTANDING and self.due_on is not None
                and self.due_on < clock.now())


# -- arithmetic --------------------------------------------------------------------------------

def compute_royalty_fen(sales_fen, basis_points):
    """The royalty on ``sales_fen`` at ``basis_points`` (1/100 of a percent), rounded half up
    to the fen. Integers only: 0.25 % of 1 fen is 0.0025 fen, of 200 fen 0.5 fen -> 1 fen."""
    for value in (sales_fen, basis_points):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"not a non-negative integer: {value!r}")
    return (sales_fen * basis_points + 5000) // 10000


def period_months():
    months = rules.get_rule("royalty.period_months")
    if months not in PERIOD_MONTHS:
        logger.error("rule royalty.period_months is %r, not one of %s; using 3", months,
                     PERIOD_MONTHS)
        return 3
    return months


def period_of(day, months):
    """(first day, last day) of the period of ``months`` months, counted from 1 January,
    that contains ``day``."""
    first_month = (day.month - 1) // months * months + 1
    start = date(day.year, first_month, 1)
    after = first_month + months
    next_start = date(day.year + (after - 1) // 12, (after - 1) % 12 + 1, 1)
    return start, next_start - timedelta(days=1)


def local_day(when_utc):
    return when_utc.replace(tzinfo=UTC).astimezone(SHANGHAI).date()


def local_midnight(day):
    """Beijing midnight at the start of ``day`` as naive UTC."""
    return datetime.combine(day, time(), SHANGHAI).astimezone(UTC).replace(tzinfo=None)


def last_ended_period(now=None, months=None):
    """The latest period whose last day (Beijing time) is over."""
    months = months or period_months()
    current_start, _end = period_of(local_day(now or clock.now()), months)
    return period_of(current_start - timedelta(days=1), months)


def period_label(start, end):
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if months == 3:
        return f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    if months == 12:
        return f"{start.year}年度"
    if months == 1:
        return f"{start.year}年{start.month}月"
    return f"{start.isoformat()} 至 {end.isoformat()}"


# -- opening periods (the periodic job) --------------------------------------------------------

def licences_owing(start, end):
    """Ids of active licences of processors and sellers, valid during [start, end], that
    have no royalty for the period starting ``start``."""
    has_row = select(Royalty.id).where(Royalty.licence_id == Licence.id,
                                       Royalty.period_start == start).exists()
    return session().scalars(
        select(Licence.id).join(Enterprise, Enterprise.id == Licence.enterprise_id)
        .where(Licence.status == "active", Licence.valid_from <= end,
               Licence.valid_until >= start, Enterprise.kind.in_(sorted(ROYALTY_KINDS)),
               Enterprise.status == "admitted", ~has_row)
        .order_by(Licence.id)).all()


def open_period(licence_id, start, end):
    """Start the royalty case of one licence for one period; None when it exists already."""
    from engine import runtime

    licence = session().get(Licence, licence_id)
    if licence is None:
        raise NotFound("授权不存在", licence_id=licence_id)
    exists = session().scalar(select(Royalty.id).where(
        Royalty.licence_id == licence_id, Royalty.period_start == start))
    if exists is not None:
        return None
    label = period_label(start, end)
    data = {"licence_id": licence.id, "licence_number": licence.number,
            "period_start": start.isoformat(), "period_end": end.isoformat(),
            "period_label": label, "royalty_basis_points": licence.royalty_basis_points,
            "royalty_rate": _rate_text(licence.royalty_basis_points)}
    title = f"品牌权费 {label}：{licence.enterprise.name}"
    instance = runtime.start_instance(PROCESS, None, data, enterprise_id=licence.enterprise_id,
                                      title=title[:200])
    logger.info("royalty case %s opened for licence %s, %s to %s", instance.id, licence.id,
                start, end)
    return instance


@periodic_job
def open_due_periods(transaction, now=None):
    """Open the last ended period for every licence that owes it; each in its own
    transaction. Returns how many cases were started."""
    with transaction():
        start, end = last_ended_period(now)
        owing = licences_owing(start, end)
    opened = 0
    for licence_id in owing:
        try:
            with transaction():
                if open_period(licence_id, start, end) is not None:
                    opened += 1
        except (BrandError, DBAPIError) as exc:
            # A racing scheduler opened it first (unique constraint), or the diagram is not
            # deployed: logged, and the next run tries again.
            logger.warning("royalty of licence %s for %s not opened: %s", licence_id, start,
                           exc)
    if opened:
        logger.info("opened %s royalty case(s) for the period %s to %s", opened, start, end)
    return opened


@starters(PROCESS)
def may_start(user):
    """Nobody: the scheduler opens royalty cases (see ``open_due_periods``)."""
    return False


@start_guard(PROCESS)
def refuse_manual_start(user, enterprise, data):
    raise Forbidden("品牌权费案件由系统在每个征收周期结束时自动发起")


# -- the diagram's effects ---------------------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None:
        raise ValidationFailed("权费操作只能在案件中执行")
    return step


def _royalty(step):
    royalty = royalty_of_instance(step.instance.id)
    if royalty is None:
        raise NotFound("此案件没有对应的权费记录")
    return royalty


def _utc(value):
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _rate_text(basis_points):
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


@service_operation
def open_royalty_period(task_data, **_params):
    """Record the period's royalty; returns the declaration deadline (a timer reads it)."""
    step = _step()
    licence = session().get(Licence, task_data.get("licence_id") or 0)
    if licence is None:
        raise NotFound("授权不存在", licence_id=task_data.get("licence_id"))
    declare_by = deadline_in_working_days(rules.get_rule("royalty.declaration_working_days"))
    royalty = Royalty(
        licence_id=licence.id, enterprise_id=licence.enterprise_id,
        instance_id=step.instance.id,
        period_start=date.fromisoformat(task_data["period_start"]),
        period_end=date.fromisoformat(task_data["period_end"]),
        royalty_basis_points=licence.royalty_basis_points, status="declaring",
        declare_by=_utc(declare_by), created_at=clock.now())
    session().add(royalty)
    session().flush()
    if step.instance.enterprise_id is None:
        step.instance.enterprise_id = licence.enterprise_id
    step.record("royalty_opened", royalty_id=royalty.id, licence_id=licence.id,
                period_start=task_data["period_start"], period_end=task_data["period_end"],
                declare_by=royalty.declare_by.isoformat() + "Z")
    return declare_by


def label_bounds(licence_id, start, end, before_royalty_id=None):
    """(labels available for the period, labels first scanned in it) of a licence.

    Available: labels in batches issued before the period's end and not cancelled, less
    the units declared for earlier periods of the licence. Scanned: labels of those
    batches whose first verification fell within the period (Beijing days).
    """
    from engine.labels import Label, LabelBatch

    period_from, period_to = local_midnight(start), local_midnight(end + timedelta(days=1))
    batches = session().execute(select(LabelBatch.first_serial, LabelBatch.count).where(
        LabelBatch.licence_id == licence_id, LabelBatch.status == "active",
        LabelBatch.created_at < period_to)).all()
    issued = sum(count for _first, count in batches)
    earlier = select(func.coalesce(func.sum(Royalty.declared_units), 0)).where(
        Royalty.licence_id == licence_id, Royalty.period_start < start,
        Royalty.declared_units.is_not(None))
    if before_royalty_id is not None:
        earlier = earlier.where(Royalty.id != before_royalty_id)
    declared_before = int(session().scalar(earlier) or 0)

    scanned = 0
    for first, count in batches:
        scanned += session().scalar(select(func.count()).select_from(Label).where(
            and_(Label.serial >= first, Label.serial < first + count),
            Label.first_scanned_at >= period_from, Label.first_scanned_at < period_to)) or 0
    return max(0, issued - declared_before), int(scanned)


@service_operation
def check_royalty_declaration(task_data, **_params):
    """Keep the declaration and compare it with the labels; returns what finance sees."""
    step = _step()
    royalty = _royalty(step)
    units = task_data.get("declared_units")
    sales = task_data.get("declared_sales_fen")
    problems = {}
    if isinstance(units, bool) or not isinstance(units, int) or units < 0:
        problems["declared_units"] = [N_("应为不小于 0 的整数")]
    if isinstance(sales, bool) or not isinstance(sales, int) or sales < 0:
        problems["declared_sales_fen"] = [N_("金额须为不小于零的整数（分）")]
    if problems:
        raise ValidationFailed("销售申报无效", fields=problems)

    available, scanned = label_bounds(royalty.licence_id, royalty.period_start,
                                      royalty.period_end, before_royalty_id=royalty.id)
    royalty.declared_units = units
    royalty.declared_sales_fen = sales
    royalty.declared_at = clock.now()
    royalty.labels_available = available
    royalty.labels_scanned = scanned
    royalty.flag = "oversized" if units > available else "undersized" if units < scanned \
        else None
    royalty.status = "checking"
    step.record("royalty_declared", units=units, sales_fen=sales, labels_available=available,
                labels_scanned=scanned, flag=royalty.flag)
    if royalty.flag == "oversized":
        logger.info("royalty %s: %s units declared, labels allow %s", royalty.id, units,
                    available)
    # Returned whole: a script task of the diagram puts each value where the finance
    # form reads it (a service task only hands back its result variable).
    return {"flag": royalty.flag, "labels_available": available, "labels_scanned": scanned,
            "flag_text": FLAGS[royalty.flag] if royalty.flag else "无异常",
            "royalty_preview_fen": compute_royalty_fen(sales, royalty.royalty_basis_points)}


@service_operation
def return_royalty_declaration(task_data, **_params):
    """Finance sent the declaration back: the enterprise declares again."""
    step = _step()
    royalty = _royalty(step)
    royalty.status = "declaring"
    step.record("royalty_declaration_returned",
                note=str(task_data.get("check_note") or "")[:2000])
    return royalty.status


@service_operation
def assess_royalty(task_data, **_params):
    """Finance accepted the declaration: compute the royalty and the payment deadline.

    Returns the royalty and the deadline (ISO, UTC), which the payment task's timer reads."""
    step = _step()
    royalty = _royalty(step)
    royalty.royalty_fen = compute_royalty_fen(royalty.declared_sales_fen,
                                              royalty.royalty_basis_points)
    pay_by = deadline_in_working_days(rules.get_rule("royalty.payment_working_days"))
    royalty.due_on = _utc(pay_by)
    royalty.due_provisional = is_provisional(royalty.due_on)
    royalty.status = "due"
    step.record("royalty_assessed", royalty_fen=royalty.royalty_fen,
                sales_fen=royalty.declared_sales_fen,
                basis_points=royalty.royalty_basis_points,
                due_on=royalty.due_on.isoformat() + "Z", provisional=royalty.due_provisional)
    return {"royalty_fen": royalty.royalty_fen, "pay_by": pay_by}


@service_operation
def remind_royalty(task_data, **_params):
    """The deadline passed unpaid: remind the enterprise; returns when to escalate."""
    step = _step()
    royalty = _royalty(step)
    escalate_by = deadline_in_working_days(rules.get_rule("royalty.reminder_working_days"))
    royalty.status = "overdue"
    royalty.reminded_at = clock.now()
    step.record("royalty_reminded", royalty_fen=royalty.royalty_fen,
                due_on=royalty.due_on.isoformat() + "Z", escalate_by=escalate_by)
    return escalate_by


@service_operation
def escalate_royalty(task_data, reason=None, **_params):
    """Escalate to leadership: the payment is still missing after the reminder, or the
    enterprise did not declare in time (``reason`` says which). Returns what the deposit
    has available, for leadership's decision."""
    step = _step()
    royalty = _royalty(step)
    if reason == "unpaid":
        royalty.status = "escalated"
        royalty.escalated_at = royalty.escalated_at or clock.now()
    step.record("royalty_escalated", reason=reason)
    logger.info("royalty %s of enterprise %s escalated: %s", royalty.id, royalty.enterprise_id,
                reason)
    return ledger.position(royalty.enterprise_id).available_fen


@service_operation
def record_royalty_payment(task_data, **_params):
    """Finance confirmed the payment."""
    step = _step()
    royalty = _royalty(step)
    royalty.status = "paid"
    royalty.paid_at = clock.now()
    royalty.payment_reference = str(task_data.get("payment_reference") or "")[:100] or None
    step.record("royalty_paid", royalty_fen=royalty.royalty_fen,
                reference=royalty.payment_reference)
    return royalty.status


@service_operation
def decide_overdue_royalty(task_data, **_params):
    """Leadership's decision on an unpaid royalty, carried out in this step.

    ``deduct``: the royalty leaves the deposit for good, entered as the ledger records a
    deduction without a consumer advance (frozen for this case, paid out to the office,
    deducted); refused on the decision field when the deposit's available amount is short.
    ``extend``: a new deadline of ``royalty.payment_working_days``; returns it.
    ``expel``: an expulsion case for unpaid dues starts in the same step.
    """
    step = _step()
    royalty = _royalty(step)
    decision = task_data.get("royalty_decision")
    if decision not in DECISIONS:
        raise ValidationFailed("决定无效", fields={"royalty_decision": [N_("请从列表中选择")]})
    royalty.decision = decision
    royalty.decided_by = getattr(step.actor, "id", None)

    if decision == "deduct":
        available = ledger.position(royalty.enterprise_id).available_fen
        amount = royalty.royalty_fen
        if amount > available:
            short = N_("保证金可用余额不足以扣缴本期权费")
            raise ValidationFailed("保证金可用余额不足", fields={"royalty_decision": [short]},
                                   available_fen=available, royalty_fen=amount)
        note = f"品牌权费 {period_label(royalty.period_start, royalty.period_end)} 逾期未缴，扣缴"
        if amount:
            for kind in ("frozen", "paid_out", "deducted"):
                ledger.post(royalty.enterprise_id, kind, amount, instance_id=step.instance.id,
                            approved_by=royalty.decided_by, note=note)
        royalty.status = "deducted"
        royalty.paid_at = clock.now()
        step.record("royalty_deducted", amount_fen=amount,
                    shortfall_fen=ledger.shortfall(royalty.enterprise))
        return None

    if decision == "extend":
        pay_by = deadline_in_working_days(rules.get_rule("royalty.payment_working_days"))
        royalty.due_on = _utc(pay_by)
        royalty.due_provisional = is_provisional(royalty.due_on)
        royalty.status = "due"
        step.record("royalty_extended", due_on=royalty.due_on.isoformat() + "Z")
        return pay_by

    from engine import expulsion, runtime

    evidence = (f"品牌权费 {period_label(royalty.period_start, royalty.period_end)}"
                f"（授权 {royalty.licence.number}）应缴 {royalty.royalty_fen} 分，"
                f"催缴后仍未缴纳；权费案件 {step.instance.id}。")
    data = {"enterprise_id": royalty.enterprise_id, "grounds": "unpaid_dues",
            "evidence": evidence, "attachments": ""}
    # The expulsion's own start rule: leadership may start it, one running case at a time.
    expulsion.check_can_start_expulsion(step.actor, None, data)
    case = runtime.start_instance(expulsion.PROCESS, step.actor, data,
                                  enterprise_id=royalty.enterprise_id)
    step.record("expulsion_started", expulsion_case=case.id)
    return None


# -- reading -----------------------------------------------------------------------------------

def royalty_of_instance(instance_id):
    return session().scalars(select(Royalty).where(Royalty.instance_id == instance_id)).first()


def check_may_view(user, enterprise_id):
    """An enterprise user sees its own royalties; royalty staff see every enterprise's."""
    if user.enterprise_id is not None:
        if user.enterprise_id != enterprise_id:
            raise Forbidden("只能查看本企业的品牌权费")
    elif not user.group_ids & ROYALTY_STAFF:
        raise Forbidden("没有权限查看品牌权费")


def may_view_all(user):
    return user.enterprise_id is None and bool(user.group_ids & ROYALTY_STAFF)


def check_staff(user):
    if not may_view_all(user):
        raise Forbidden("只有财务部、市场开发部、品牌管理办公室和领导小组可以查看权费汇总")


def royalties_of(enterprise_id):
    """The enterprise's royalties, newest period first (its royalty ledger)."""
    ledger.get_enterprise(enterprise_id)
    return session().scalars(select(Royalty).where(Royalty.enterprise_id == enterprise_id)
                             .order_by(Royalty.period_start.desc(), Royalty.id.desc())).all()


def totals(royalties):
    """Assessed, collected and outstanding fen of a list of royalties."""
    assessed = sum(r.royalty_fen or 0 for r in royalties)
    collected = sum(r.royalty_fen or 0 for r in royalties if r.status in COLLECTED)
    outstanding = sum(r.royalty_fen or 0 for r in royalties if r.status in OUTSTANDING)
    return {"assessed_fen": assessed, "collected_fen": collected,
            "outstanding_fen": outstanding}


def yearly_totals():
    """Per year of the period: royalties counted, assessed, collected and outstanding (fen).

    Summed in the database; the year is the period's (periods never straddle a year)."""
    year = func.extract("year", Royalty.period_start)
    fen = func.coalesce(Royalty.royalty_fen, 0)

    def summed(statuses):
        return func.coalesce(func.sum(case((Royalty.status.in_(statuses), fen), else_=0)), 0)

    rows = session().execute(
        select(year, func.count(Royalty.id), func.coalesce(func.sum(fen), 0),
               summed(COLLECTED), summed(OUTSTANDING), func.coalesce(
                   func.sum(Royalty.declared_sales_fen), 0))
        .group_by(year).order_by(year.desc())).all()
    return [{"year": int(y), "count": int(n), "assessed_fen": int(a), "collected_fen": int(c),
             "outstanding_fen": int(o), "declared_sales_fen": int(s)}
            for y, n, a, c, o, s in rows]


def enterprise_summaries():
    """[(enterprise, totals)] of every enterprise with a royalty, by name."""
    rows = session().scalars(select(Royalty).order_by(Royalty.enterprise_id)).all()
    grouped = {}
    for royalty in rows:
        grouped.setdefault(royalty.enterprise_id, []).append(royalty)
    enterprises = session().scalars(select(Enterprise).where(
        Enterprise.id.in_(list(grouped)))).all() if grouped else []
    return [(e, totals(grouped[e.id]), len(grouped[e.id]))
            for e in sorted(enterprises, key=lambda e: e.name)]

