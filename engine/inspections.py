"""Sampling inspections (抽检): planned by quality staff, run by a third-party lab.

``quality`` plans an inspection of one active licence (the enterprise, its production
base, a retail outlet or the product on the shelf), either picked by hand or drawn at
random among active licences with a weight that grows with the licence's risk
(``risk_weights``, ``draw``). An ``inspection`` case then records the lab and the
samples, and the results against every dimension of the licence grade's quality
standard (``engine.licensing.QualityDimension``, defined by the office).

Recording the result is one step. Passed or failed, it writes a trace event of kind
``inspection`` with the report's number, so that consumers see it on the verify page.
A failure, in the same step, starts a ``deposit_freeze`` case for the enterprise and
raises a task for ``protection`` (the diagram's protection lane); when the enterprise
failed ``inspection.repeat_failure_count`` times within ``inspection.repeat_failure_days``
this is grounds for expulsion, and the protection task may start an ``expulsion`` case.

The case is not bound to the enterprise (``Instance.enterprise_id`` stays empty): an
enterprise must not learn of a sampling visit before it happens. It learns of a failure
through the deposit case and the trace.
"""

import logging
import random
import re
from datetime import date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock, deposits, ledger, rules, trace
from engine.db import Base, session
from engine.errors import N_, Forbidden, NotFound, ValidationFailed
from engine.inbox import OVERSIGHT_GROUPS
from engine.licensing import PRODUCTS, Licence, get_grade
from engine.models import Enterprise, Instance
from engine.services import service_operation, start_guard, starters

logger = logging.getLogger(__name__)

PROCESS = "inspection"
PLANNERS = frozenset({"quality"})
# Who reads the inspections and the risk weights.
STAFF_GROUPS = frozenset({"quality", "protection"}) | OVERSIGHT_GROUPS

rules.KNOWN.update({
    "inspection.base_weight": rules.RuleSpec(
        int, 1, N_("抽检风险权重：每个有效授权的基础权重"), minimum=1),
    "inspection.complaint_weight": rules.RuleSpec(
        int, 3, N_("抽检风险权重：统计期间内每件针对该企业的投诉（不予受理的除外）所加权重")),
    "inspection.suspect_weight": rules.RuleSpec(
        int, 2, N_("抽检风险权重：统计期间内该授权每枚被判为疑似复制的标签所加权重")),
    "inspection.risk_days": rules.RuleSpec(
        int, 365, N_("计算抽检风险权重时统计投诉和可疑标签的期间（天）"), minimum=1),
    "inspection.freeze_fen": rules.RuleSpec(
        int, 200_000, N_("抽检不合格时冻结的保证金金额（分），抽检结果表单未填写金额时使用"),
        minimum=1),
    "inspection.repeat_failure_count": rules.RuleSpec(
        int, 2, N_("同一企业在统计期间内抽检不合格达到此次数，即构成强制清退事由"), minimum=1),
    "inspection.repeat_failure_days": rules.RuleSpec(
        int, 365, N_("统计抽检不合格次数的期间（天）"), minimum=1),
})

TARGET_KINDS = {
    "enterprise": N_("企业"),
    "base": N_("生产基地"),
    "outlet": N_("零售网点"),
    "product": N_("在售产品"),
}
SELECTIONS = {"manual": N_("指定抽检"), "risk_draw": N_("风险加权随机抽取")}
STATUSES = {
    "planned": N_("已计划，待抽样"),
    "sampled": N_("已抽样，待检测结果"),
    "passed": N_("合格"),
    "failed": N_("不合格，待品牌保护处理"),
    "closed": N_("不合格，已处理"),
}
RESULTS = {"pass": N_("合格"), "fail": N_("不合格")}
ACTIONS = {
    "expel": N_("以多次抽检不合格为由启动强制清退程序"),
    "rectify": N_("责令整改，跟踪复检"),
    "no_action": N_("暂不处理"),
}
PASS_WORDS = frozenset({"合格", "符合", "通过", "pass", "passed", "ok"})
FAIL_WORDS = frozenset({"不合格", "不符合", "未通过", "fail", "failed"})
_SEPARATOR = re.compile(r"\s*[|｜:：]\s*")

BAD_LINE = N_("每行应为“维度名称 | 合格或不合格 | 实测值（可省略）”")
UNKNOWN_DIMENSION = N_("有维度不属于该等级的质量标准，请按标准中的名称填写")
MISSING_DIMENSION = N_("须逐项填写该等级质量标准的每个维度")
DUPLICATE_DIMENSION = N_("同一维度填写了多次")
CONCLUSION_MISMATCH = N_("有维度不合格时检测结论不能为合格")
OVER_AVAILABLE = N_("超过该企业保证金可用余额")
NOT_ACTIVE = N_("不是有效授权的编号")
NOT_GROUNDS = N_("未达到多次抽检不合格的清退条件，不能以此为由启动清退")


class Inspection(Base):
    """One sampling inspection as quality and protection follow it.

    ``grade_code`` is the licence's grade when the inspection was planned: the standard
    the results were judged against. ``result`` is empty until the lab's results are in.
    """

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licences.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_detail: Mapped[str] = mapped_column(String(200), default="")
    selection: Mapped[str] = mapped_column(String(16), default="manual")
    # The licence's risk weight when it was planned (shown to the planner).
    risk_weight: Mapped[int | None] = mapped_column(Integer)
    plan_note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    lab_name: Mapped[str | None] = mapped_column(String(200))
    sample_refs: Mapped[str | None] = mapped_column(Text)
    sampled_on: Mapped[date | None] = mapped_column(Date)
    report_ref: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str | None] = mapped_column(String(8))
    result_note: Mapped[str | None] = mapped_column(Text)
    trace_event_id: Mapped[int | None] = mapped_column(ForeignKey("trace_events.id"))
    # A failure: the freeze, the case it started, and whether it is grounds for expulsion.
    freeze_fen: Mapped[int | None] = mapped_column(BigInteger)
    dispute_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    failure_count: Mapped[int | None] = mapped_column(Integer)
    expulsion_grounds: Mapped[bool] = mapped_column(Boolean, default=False)
    protection_action: Mapped[str | None] = mapped_column(String(16))
    protection_note: Mapped[str | None] = mapped_column(Text)
    expulsion_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    planned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    planned_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    licence: Mapped[Licence] = relationship()
    enterprise: Mapped[Enterprise] = relationship()
    instance: Mapped[Instance] = relationship(foreign_keys=[instance_id])
    results: Mapped[list["InspectionResult"]] = relationship(
        order_by="InspectionResult.position", cascade="all, delete-orphan", lazy="selectin")

    __table_args__ = (
        CheckConstraint("target_kind in ('enterprise', 'base', 'outlet', 'product')",
                        name="target_kind"),
        CheckConstraint("selection in ('manual', 'risk_draw')", name="selection"),
        CheckConstraint("status in ('planned', 'sampled', 'passed', 'failed', 'closed')",
                        name="status"),
        CheckConstraint("result is null or result in ('pass', 'fail')", name="result"),
        CheckConstraint("freeze_fen is null or freeze_fen >= 0", name="freeze"),
    )


class InspectionResult(Base):
    """The result of one dimension of the quality standard.

    The dimension's name and requirement are copied: office staff may change the
    standard later, and the result must still say what it was judged against.
    """

    __tablename__ = "inspection_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"), index=True)
    dimension_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    dimension_name: Mapped[str] = mapped_column(String(100))
    requirement: Mapped[str] = mapped_column(Text, default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    measured: Mapped[str] = mapped_column(String(200), default="")


# -- risk-weighted selection -------------------------------------------------------------------

def active_licences(today=None):
    today = today or clock.now().date()
    return session().scalars(select(Licence).where(
        Licence.status == "active", Licence.valid_from <= today, Licence.valid_until >= today)
        .order_by(Licence.id)).all()


def risk_weights(now=None):
    """Every active licence with its risk and weight, heaviest first.

    ``weight = base + complaint_weight x complaints + suspect_weight x suspect labels``,
    counting the enterprise's complaints (except those not accepted) and the licence's
    labels found suspect (copied) within ``inspection.risk_days``. Each item is a dict:
    ``licence``, ``complaints``, ``suspect_labels``, ``weight``.
    """
    from engine.complaints import Complaint
    from engine.labels import Label, LabelBatch

    now = now or clock.now()
    since = now - timedelta(days=rules.get_rule("inspection.risk_days"))
    licences = active_licences(now.date())
    complaints = dict(session().execute(
        select(Complaint.enterprise_id, func.count(Complaint.id)).where(
            Complaint.enterprise_id.is_not(None), Complaint.status != "rejected",
            Complaint.created_at >= since).group_by(Complaint.enterprise_id)).all())
    suspects = dict(session().execute(
        select(LabelBatch.licence_id, func.count(Label.serial))
        .join(LabelBatch, Label.batch_id == LabelBatch.id)
        .where(Label.suspect_at.is_not(None), Label.suspect_at >= since)
        .group_by(LabelBatch.licence_id)).all())

    base = rules.get_rule("inspection.base_weight")
    per_complaint = rules.get_rule("inspection.complaint_weight")
    per_suspect = rules.get_rule("inspection.suspect_weight")
    items = []
    for licence in licences:
        n_complaints = int(complaints.get(licence.enterprise_id, 0))
        n_suspect = int(suspects.get(licence.id, 0))
        items.append({"licence": licence, "complaints": n_complaints,
                      "suspect_labels": n_suspect,
                      "weight": base + per_complaint * n_complaints + per_suspect * n_suspect})
    return sorted(items, key=lambda item: (-item["weight"], item["licence"].id))


def draw(count=1, seed=None, weights=None):
    """Draw ``count`` distinct licences at random, each with odds proportional to its weight.

    Weighted sampling without replacement (each item's key is ``u ** (1 / weight)`` for a
    uniform ``u``; the largest keys win). The same ``seed`` over the same licences and
    weights gives the same draw, so a draw can be repeated and tested; without a seed it
    is unpredictable. Returns the drawn items of ``risk_weights`` in drawing order.
    """
    items = weights if weights is not None else risk_weights()
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValidationFailed("抽取数量无效", fields={"count": [N_("应为正整数")]})
    generator = random.Random(seed) if seed is not None else random.SystemRandom()
    ordered = sorted(items, key=lambda item: item["licence"].id)
    keyed = [(generator.random() ** (1.0 / item["weight"]), item) for item in ordered]
    keyed.sort(key=lambda pair: -pair[0])
    return [item for _key, item in keyed[:count]]


def weight_of(licence_id):
    for item in risk_weights():
        if item["licence"].id == licence_id:
            return item
    return None


# -- starting a case ---------------------------------------------------------------------------

@starters(PROCESS)
def may_start(user):
    return user.enterprise_id is None and bool(user.group_ids & PLANNERS)


def _active_licence(licence_id):
    licence = session().get(Licence, licence_id) if isinstance(licence_id, int) else None
    if licence is None or not licence.is_active_on(clock.now().date()):
        raise ValidationFailed("授权不存在或未生效", fields={"licence_id": [NOT_ACTIVE]})
    return licence


@start_guard(PROCESS)
def check_can_plan(user, enterprise, data):
    """Quality staff plan inspections, of an active licence only."""
    if enterprise is not None or not may_start(user):
        raise Forbidden("只有质检部门可以计划抽检")
    _active_licence(data.get("licence_id"))


def standard_text(grade):
    """The grade's quality standard as the results form shows it, one dimension a line."""
    if not grade.dimensions:
        return "（该等级尚未定义质量标准维度，按检测机构的结论判定）"
    return "\n".join(f"{d.name}：{d.requirement}" if d.requirement else d.name
                     for d in grade.dimensions)


def results_template(grade):
    """Lines to fill in, one per dimension, in the format ``parse_results`` reads."""
    return "\n".join(f"{d.name} | " for d in grade.dimensions)


# -- the diagram's effects ---------------------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None:
        raise ValidationFailed("抽检操作只能在案件中执行")
    return step


def inspection_of_instance(instance_id):
    return session().scalars(select(Inspection).where(
        Inspection.instance_id == instance_id)).first()


def _inspection(step):
    inspection = inspection_of_instance(step.instance.id)
    if inspection is None:
        raise NotFound("此案件没有对应的抽检记录")
    return inspection


def _text(value, limit):
    return str(value or "").strip()[:limit]


@service_operation
def open_inspection(task_data, **_params):
    """Record the planned inspection; returns what the later forms show."""
    step = _step()
    licence = _active_licence(task_data.get("licence_id"))
    target_kind = task_data.get("target_kind") or "enterprise"
    if target_kind not in TARGET_KINDS:
        raise ValidationFailed("抽检对象无效", fields={"target_kind": [N_("请从列表中选择")]})
    selection = task_data.get("selection") or "manual"
    if selection not in SELECTIONS:
        selection = "manual"
    weighed = weight_of(licence.id)

    inspection = Inspection(
        instance_id=step.instance.id, licence_id=licence.id,
        enterprise_id=licence.enterprise_id, grade_code=licence.grade_code,
        target_kind=target_kind, target_detail=_text(task_data.get("target_detail"), 200),
        selection=selection, risk_weight=weighed["weight"] if weighed else None,
        plan_note=_text(task_data.get("plan_note"), 2000), status="planned",
        planned_by=getattr(step.actor, "id", None), planned_at=clock.now())
    session().add(inspection)
    session().flush()
    step.instance.title = f"抽检：{licence.enterprise.name}（{licence.number}）"
    step.record("inspection_planned", inspection_id=inspection.id, licence_id=licence.id,
                selection=selection, risk_weight=inspection.risk_weight)
    grade = licence.grade
    return {"licence_number": licence.number or "", "enterprise_name": licence.enterprise.name,
            "product_name": PRODUCTS.get(licence.product, licence.product),
            "grade_name": grade.name_zh, "quality_standard": standard_text(grade),
            "results_template": results_template(grade),
            "target_text": TARGET_KINDS[target_kind], "risk_weight": inspection.risk_weight}


@service_operation
def record_samples(task_data, **_params):
    """The lab and the samples taken."""
    step = _step()
    inspection = _inspection(step)
    lab = _text(task_data.get("lab_name"), 200)
    samples = _text(task_data.get("sample_refs"), 5000)
    problems = {}
    if not lab:
        problems["lab_name"] = [N_("必填")]
    if not samples:
        problems["sample_refs"] = [N_("必填")]
    if problems:
        raise ValidationFailed("抽样信息不完整", fields=problems)
    sampled_on = task_data.get("sampled_on")
    inspection.lab_name = lab
    inspection.sample_refs = samples
    inspection.sampled_on = date.fromisoformat(sampled_on) if sampled_on else clock.now().date()
    inspection.status = "sampled"
    step.record("inspection_sampled", lab=lab,
                samples=len([s for s in samples.splitlines() if s.strip()]))
    return inspection.status


def _verdict(word):
    word = word.strip().lower()
    if word in PASS_WORDS:
        return True
    if word in FAIL_WORDS:
        return False
    return None


def parse_results(text, dimensions):
    """[(dimension, passed, measured)] from one line per dimension of the standard.

    A line is ``name | 合格 | measured`` (``|``, ``：`` or ``:`` between the parts; the
    measured value may be left out). Every dimension must be there once; raises
    ValidationFailed on ``dimension_results`` otherwise.
    """
    by_name = {d.name: d for d in dimensions}
    seen = {}
    problem = None
    for line in str(text or "").splitlines():
        if not line.strip():
            continue
        parts = _SEPARATOR.split(line.strip(), maxsplit=2)
        passed = _verdict(parts[1]) if len(parts) >= 2 else None
        if passed is None:
            problem = BAD_LINE
            break
        dimension = by_name.get(parts[0].strip())
        if dimension is None:
            problem = UNKNOWN_DIMENSION
            break
        if dimension.id in seen:
            problem = DUPLICATE_DIMENSION
            break
        seen[dimension.id] = (dimension, passed, parts[2].strip()[:200] if len(parts) > 2 else "")
    if problem is None and len(seen) != len(by_name):
        problem = MISSING_DIMENSION
    if problem is not None:
        raise ValidationFailed("检测结果无效", fields={"dimension_results": [problem]})
    return [seen[d.id] for d in dimensions]


def recent_failures(enterprise_id, now=None):
    """Failed inspections of the enterprise recorded within the rule's period."""
    now = now or clock.now()
    since = now - timedelta(days=rules.get_rule("inspection.repeat_failure_days"))
    return session().scalar(select(func.count(Inspection.id)).where(
        Inspection.enterprise_id == enterprise_id, Inspection.result == "fail",
        Inspection.recorded_at >= since)) or 0


def _freeze_amount(inspection, task_data):
    """The amount to freeze: the form's, refused above the available deposit; else the
    rule's, capped at what is available (nothing, when nothing is)."""
    available = ledger.position(inspection.enterprise_id).available_fen
    asked = task_data.get("freeze_fen")
    if asked is not None:
        if isinstance(asked, bool) or not isinstance(asked, int) or asked <= 0:
            raise ValidationFailed("冻结金额无效",
                                   fields={"freeze_fen": [N_("金额须为大于零的整数（分）")]})
        if asked > available:
            raise ValidationFailed("冻结金额超过保证金可用余额",
                                   fields={"freeze_fen": [OVER_AVAILABLE]},
                                   available_fen=available)
        return asked
    return max(0, min(rules.get_rule("inspection.freeze_fen"), available))


@service_operation
def record_inspection_result(task_data, **_params):
    """The lab's results, judged against the grade's standard, with all that follows.

    Writes the per-dimension results and a trace event; on a failure, in this step, starts
    the deposit freezing case and counts the enterprise's recent failures (grounds for
    expulsion at ``inspection.repeat_failure_count``). Returns what the protection task
    shows (``failed`` is what the diagram's gateway reads).
    """
    step = _step()
    inspection = _inspection(step)
    grade = get_grade(inspection.grade_code)
    parsed = parse_results(task_data.get("dimension_results"), grade.dimensions)
    conclusion = task_data.get("lab_conclusion")
    if conclusion not in RESULTS:
        raise ValidationFailed("检测结论无效", fields={"lab_conclusion": [N_("请从列表中选择")]})
    if conclusion == "pass" and not all(passed for _d, passed, _m in parsed):
        raise ValidationFailed("检测结论与各维度结果不一致",
                               fields={"lab_conclusion": [CONCLUSION_MISMATCH]})
    report_ref = _text(task_data.get("report_ref"), 100)
    if not report_ref:
        raise ValidationFailed("须填写检验报告编号", fields={"report_ref": [N_("必填")]})
    failed = conclusion == "fail"
    freeze = _freeze_amount(inspection, task_data) if failed else None

    now = clock.now()
    inspection.results = [
        InspectionResult(dimension_id=d.id, position=i, dimension_name=d.name,
                         requirement=d.requirement or "", passed=passed, measured=measured)
        for i, (d, passed, measured) in enumerate(parsed)]
    inspection.report_ref = report_ref
    inspection.result = conclusion
    inspection.result_note = _text(task_data.get("result_note"), 2000) or None
    inspection.recorded_by = getattr(step.actor, "id", None)
    inspection.recorded_at = now
    inspection.status = "failed" if failed else "passed"
    failed_names = [d.name for d, passed, _m in parsed if not passed]

    note = f"第三方抽检（{inspection.lab_name}）：{'不合格' if failed else '合格'}"
    if failed_names:
        note += "；不合格项目：" + "、".join(failed_names)
    event = trace.TraceEvent(
        licence_id=inspection.licence_id, kind="inspection",
        occurred_at=_sampled_at(inspection), note=note, report_ref=report_ref,
        place=inspection.target_detail or inspection.licence.base_location or inspection.lab_name,
        recorded_by=inspection.recorded_by, recorded_at=now)
    session().add(event)
    session().flush()
    inspection.trace_event_id = event.id
    step.record("inspection_result", result=conclusion, report_ref=report_ref,
                failed_dimensions=failed_names, trace_event_id=event.id)
    if not failed:
        inspection.closed_at = now
        return {"failed": False}

    dispute = None
    if freeze:
        reason = (f"抽检不合格（检验报告 {report_ref}，授权 {inspection.licence.number}）"
                  + ("：" + "、".join(failed_names) if failed_names else ""))
        dispute = deposits.start_dispute(inspection.enterprise_id, freeze, reason, step.actor)
        inspection.dispute_instance_id = dispute.id
    inspection.freeze_fen = freeze
    session().flush()
    count = recent_failures(inspection.enterprise_id, now)
    threshold = rules.get_rule("inspection.repeat_failure_count")
    inspection.failure_count = count
    inspection.expulsion_grounds = count >= threshold
    step.record("inspection_failed", freeze_fen=freeze,
                dispute_case=dispute.id if dispute else None, failure_count=count,
                threshold=threshold, expulsion_grounds=inspection.expulsion_grounds)
    logger.info("inspection %s of enterprise %s failed (%s within the period); freeze case %s",
                inspection.id, inspection.enterprise_id, count, dispute.id if dispute else None)
    return {"failed": True, "failed_dimensions": "、".join(failed_names) or "（见检测结论）",
            "freeze_fen": freeze or 0, "dispute_case": dispute.id if dispute else None,
            "failure_count": count, "expulsion_grounds": inspection.expulsion_grounds,
            "expulsion_grounds_text": (
                f"是：统计期间内第 {count} 次抽检不合格（达到 {threshold} 次即构成清退事由）"
                if inspection.expulsion_grounds else
                f"否：统计期间内第 {count} 次抽检不合格（达到 {threshold} 次构成清退事由）")}


def _sampled_at(inspection):
    """When the samples were taken, as naive UTC (Beijing noon of the day, else now)."""
    if inspection.sampled_on is None:
        return clock.now()
    return trace.parse_local_time(f"{inspection.sampled_on.isoformat()}T12:00")


@service_operation
def act_on_inspection_failure(task_data, **_params):
    """Protection's decision on a failure; ``expel`` starts an expulsion case in this step."""
    step = _step()
    inspection = _inspection(step)
    action = task_data.get("protection_action")
    if action not in ACTIONS:
        raise ValidationFailed("处理意见无效", fields={"protection_action": [N_("请从列表中选择")]})
    if action == "expel" and not inspection.expulsion_grounds:
        raise ValidationFailed("未达到清退条件", fields={"protection_action": [NOT_GROUNDS]})
    inspection.protection_action = action
    inspection.protection_note = _text(task_data.get("protection_note"), 2000) or None
    inspection.status = "closed"
    inspection.closed_at = clock.now()

    if action == "expel":
        from engine import expulsion, runtime

        reports = session().scalars(select(Inspection.report_ref).where(
            Inspection.enterprise_id == inspection.enterprise_id, Inspection.result == "fail")
            .order_by(Inspection.id)).all()
        evidence = (f"统计期间内抽检不合格 {inspection.failure_count} 次；"
                    f"本次检验报告 {inspection.report_ref}，抽检案件 {step.instance.id}。"
                    f"{inspection.protection_note or ''}")
        data = {"enterprise_id": inspection.enterprise_id, "grounds": "repeated_violations",
                "evidence": evidence[:5000], "attachments": "\n".join(r for r in reports if r)}
        # The expulsion's own start rule: who may start it, one running case at a time.
        expulsion.check_can_start_expulsion(step.actor, None, data)
        case = runtime.start_instance(expulsion.PROCESS, step.actor, data,
                                      enterprise_id=inspection.enterprise_id,
                                      title=f"强制清退：{inspection.enterprise.name}")
        inspection.expulsion_instance_id = case.id
        step.record("expulsion_started", expulsion_case=case.id)
    step.record("inspection_closed", action=action)
    return action


# -- reading -----------------------------------------------------------------------------------

def may_view(user):
    return user.enterprise_id is None and bool(user.group_ids & STAFF_GROUPS)


def check_staff(user):
    if not may_view(user):
        raise Forbidden("只有质检部门、品牌保护、品牌管理办公室和领导小组可以查看抽检")


def get_inspection(inspection_id):
    inspection = session().get(Inspection, inspection_id)
    if inspection is None:
        raise NotFound("抽检记录不存在", inspection_id=inspection_id)
    return inspection


def list_inspections(enterprise_id=None, limit=200):
    query = select(Inspection).order_by(Inspection.id.desc()).limit(limit)
    if enterprise_id is not None:
        query = query.where(Inspection.enterprise_id == enterprise_id)
    return session().scalars(query).all()
