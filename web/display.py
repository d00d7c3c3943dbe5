"""What a person reads on a case page: the case data and the history, in the user's words.

The workflow keeps field names, choice codes, booleans, integer fen and UTC times; the case
summary (案件数据) and the history (办理记录) of ``/tasks/<id>`` and ``/cases/<id>`` show
instead the field's label from the ``forms/`` definitions, choice labels, 是/否, yuan with
two decimals, Beijing time, and "—" for nothing.  Effects recorded by the engine's domain
steps are named through ``EFFECTS``; a name missing there is shown as it is.  Everything
here formats; no rule of the office lives in this module.
"""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import get_locale, gettext

from engine import licensing
from engine.errors import N_
from web.views_common import local_time, yuan

EMPTY = "—"
UTC = ZoneInfo("UTC")

_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?", re.ASCII)
_DATE_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})Z?", re.ASCII)

# Keys the diagrams write into a case that no form defines but a person wants to read.
# Any other key without a form label (routes, statuses, ids, flags) is bookkeeping and is
# left out of the summary.
CASE_LABELS = {
    "licence_number": N_("授权编号"),
    "deposit_required_fen": N_("应缴保证金"),
    "total_score": N_("总分"),
    "complaint_reference": N_("投诉编号"),
    "accept_by": N_("受理期限"),
    "declare_by": N_("申报截止时间"),
    "pay_by": N_("缴费期限"),
    "new_pay_by": N_("延长后的缴费期限"),
    "settle_by": N_("清偿期限"),
    "top_up_by": N_("补足期限"),
    "mediation_by": N_("调解期限"),
    "hearing_due": N_("陈述申辩期限"),
    "escalate_by": N_("督办期限"),
    "frozen_fen": N_("冻结金额"),
    "top_up_fen": N_("应补足金额"),
    "deposit_available_fen": N_("可用保证金"),
    "expulsion_grounds": N_("清退事由"),
}

# Every effect the engine's domain steps record (``step.record`` in engine/*.py).
EFFECTS = {
    "admitted": N_("准入通过"),
    "application_opened": N_("准入申请已受理"),
    "complaint_accepted": N_("投诉已受理"),
    "complaint_closed": N_("投诉已办结"),
    "complaint_escalated": N_("投诉受理超期，已督办"),
    "complaint_registered": N_("投诉已登记"),
    "complaint_rejected": N_("投诉不予受理"),
    "deposit_deducted": N_("保证金已扣除"),
    "deposit_frozen": N_("保证金已冻结"),
    "deposit_required": N_("应缴保证金已核定"),
    "deposit_sanction": N_("保证金处罚"),
    "deposit_settled": N_("保证金已结算"),
    "deposit_topped_up": N_("保证金已补缴"),
    "dispute_count": N_("争议次数统计"),
    "dispute_escalated": N_("争议已上报领导"),
    "dispute_opened": N_("保证金争议已立案"),
    "dispute_settled": N_("争议已清偿"),
    "enterprise_expelled": N_("企业已清退"),
    "expulsion_dismissed": N_("清退程序已终止"),
    "expulsion_opened": N_("强制清退已立案"),
    "expulsion_rejected": N_("决定不予清退"),
    "expulsion_started": N_("已启动强制清退程序"),
    "hearing_opened": N_("已告知陈述申辩"),
    "inspection_closed": N_("抽检已办结"),
    "inspection_failed": N_("抽检不合格"),
    "inspection_planned": N_("抽检已计划"),
    "inspection_result": N_("抽检结果已登记"),
    "inspection_sampled": N_("已抽样"),
    "label_batches_cancelled": N_("标签批次已作废"),
    "lapsed": N_("申请已失效"),
    "leadership_decision": N_("领导已决定"),
    "licence_active": N_("品牌授权已生效"),
    "licence_applied": N_("品牌授权申请已受理"),
    "licence_rejected": N_("品牌授权不予签发"),
    "licence_revoked": N_("品牌授权已撤销"),
    "mediation_terminated": N_("调解已终止"),
    "notice_published": N_("公告已发布"),
    "paid_in_advance": N_("已先行赔付"),
    "quota_set": N_("标签配额已核定"),
    "rejected": N_("准入未通过"),
    "royalty_assessed": N_("品牌权费已核定"),
    "royalty_declaration_returned": N_("销售申报已退回"),
    "royalty_declared": N_("销售额已申报"),
    "royalty_deducted": N_("品牌权费已从保证金扣缴"),
    "royalty_escalated": N_("品牌权费逾期，已督办"),
    "royalty_extended": N_("缴费期限已延长"),
    "royalty_opened": N_("品牌权费申报期已开启"),
    "royalty_paid": N_("品牌权费已缴纳"),
    "royalty_reminded": N_("已催缴品牌权费"),
    "settlement_deadline": N_("清偿期限已确定"),
    "statement_missing": N_("逾期未提交陈述申辩"),
    "statement_received": N_("已收到陈述申辩"),
    "top_up_demanded": N_("已要求补足保证金"),
}

# The details effects carry; ids of rows (licence_id, dispute_id...) are left out.
EFFECT_DETAILS = {
    "accept_by": N_("受理期限"),
    "action": N_("处理方式"),
    "advance_fen": N_("先行赔付金额"),
    "amount_fen": N_("金额"),
    "barred_until": N_("禁止再申请至"),
    "basis_points": N_("费率（万分之）"),
    "channel": N_("渠道"),
    "claims_deducted_fen": N_("扣除的赔付金额"),
    "count": N_("次数"),
    "deadline": N_("期限"),
    "decision": N_("决定"),
    "declare_by": N_("申报截止时间"),
    "deposit_fen": N_("保证金"),
    "dispute_case": N_("争议案件编号"),
    "disputed_fen": N_("争议金额"),
    "due_on": N_("缴费期限"),
    "enterprise": N_("企业"),
    "expulsion_case": N_("清退案件编号"),
    "expulsion_grounds": N_("清退事由"),
    "failed_dimensions": N_("不合格维度"),
    "failure_count": N_("不合格次数"),
    "flag": N_("标记"),
    "freeze_fen": N_("冻结金额"),
    "frozen_fen": N_("冻结金额"),
    "grounds": N_("事由"),
    "lab": N_("检测机构"),
    "label_quota": N_("标签配额（枚）"),
    "labels_available": N_("可用标签数"),
    "labels_scanned": N_("已扫码标签数"),
    "length": N_("字数"),
    "max_quota": N_("配额上限（枚）"),
    "mediation_by": N_("调解期限"),
    "note": N_("说明"),
    "number": N_("编号"),
    "paid_out_fen": N_("已赔付金额"),
    "period_end": N_("期末"),
    "period_start": N_("期初"),
    "quota": N_("标签配额（枚）"),
    "reason": N_("理由"),
    "recovered_fen": N_("已追回金额"),
    "reference": N_("投诉编号"),
    "report_ref": N_("报告编号"),
    "result": N_("结果"),
    "risk_weight": N_("风险权重"),
    "royalty_fen": N_("品牌权费"),
    "sales_fen": N_("销售额"),
    "samples": N_("样品"),
    "selection": N_("抽取方式"),
    "settle_by": N_("清偿期限"),
    "shortfall_fen": N_("缺口金额"),
    "statement_due": N_("陈述申辩期限"),
    "still_missing_fen": N_("尚缺金额"),
    "threshold": N_("阈值"),
    "top_up_by": N_("补足期限"),
    "top_up_fen": N_("应补足金额"),
    "unfrozen_fen": N_("解冻金额"),
    "units": N_("销售数量"),
    "verdict": N_("裁定"),
}

HISTORY_KINDS = {
    "started": N_("发起"), "completed": N_("办结"), "claimed": N_("签收"),
    "unclaimed": N_("释放"), "assigned": N_("分派"), "delegated": N_("委托"),
    "returned": N_("交回"), "timer": N_("定时器触发"), "cancelled": N_("取消"),
    "effect": N_("业务处理"), "migrated": N_("迁移到新版本"),
}

LICENCE_STATES = {
    "pending": N_("待审批"), "active": N_("有效"), "rejected": N_("不予签发"),
    "revoked": N_("已撤销"), "expired": N_("已过期"),
}


class _Field:
    """What the forms say about one field name: its label, type and choice labels."""

    def __init__(self, label, kind):
        self.label = label
        self.kind = kind
        self.choices = {}


def _catalogue(process_key=None):
    """Field name -> _Field, over every form.  A field's label and type come from the forms of
    the case's own process (named by its first word: ``licence_*`` for ``licence_grant``)
    before others, and from an editable definition before a readonly one; choice labels are
    gathered from every form that has the field, so a readonly text field (the product on
    the quality check) still shows 茶叶, not tea."""
    registry = current_app.extensions["brand_forms"]
    prefix = (process_key or "").split("_")[0] + "_" if process_key else None
    ranked = []
    for name in registry.names():
        own = prefix is not None and name.startswith(prefix)
        for spec in registry.get(name).fields:
            ranked.append(((not own, spec.readonly, name), spec))
    ranked.sort(key=lambda pair: pair[0])

    fields = {}
    for _rank, spec in ranked:
        known = fields.setdefault(spec.name, _Field(spec.label, spec.type))
        for choice in spec.choices:
            known.choices.setdefault(choice.value, choice.label)
    return fields


class Display:
    """Formats values by field name for one request (the forms and grades read once)."""

    def __init__(self, process_key=None):
        self.fields = _catalogue(process_key)
        english = str(get_locale()) == "en"
        self.grades = {g.code: (g.name_en if english else g.name_zh)
                       for g in licensing.list_grades()}

    def label(self, key, extra=None):
        """The Chinese msgid's translation for ``key``, or None when nothing names it."""
        if extra and key in extra:
            return gettext(extra[key])
        known = self.fields.get(key)
        if known is not None:
            return gettext(known.label)
        return None

    def value(self, key, value):
        """``value`` of field ``key`` as the user reads it; EMPTY for nothing."""
        if value is None or value == "" or value == [] or value == {}:
            return EMPTY
        if isinstance(value, bool):
            return gettext("是") if value else gettext("否")
        known = self.fields.get(key)
        if isinstance(value, int):
            if key.endswith("_fen") or (known is not None and known.kind == "money"):
                return yuan(value)
            return str(value)
        if isinstance(value, (list, tuple)):
            return "、".join(self.value(key, item) for item in value)
        if isinstance(value, dict):
            return "；".join(f"{self.label(k) or k}：{self.value(k, v)}"
                            for k, v in value.items())
        if isinstance(value, str):
            return self._text(key, value, known)
        return str(value)

    def _text(self, key, value, known):
        if key == "grade" and value in self.grades:
            return self.grades[value]
        if known is not None and value in known.choices:
            return gettext(known.choices[value])
        if _DATETIME_RE.fullmatch(value):
            return _beijing(value)
        if _DATE_RE.fullmatch(value):
            return _DATE_RE.fullmatch(value).group(1)
        return value

    def rows(self, data, extra=None, keep_unlabelled=False):
        """(label, text) for each key of ``data`` that has a label, in the data's order."""
        shown = []
        for key, value in data.items():
            label = self.label(key, extra)
            if label is None:
                if not keep_unlabelled:
                    continue
                label = key
            shown.append((label, self.value(key, value)))
        return shown


def _beijing(text):
    """An ISO time (naive means UTC, as the engine stores it) in Beijing time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return local_time(moment)


def case_summary(instance, data):
    """The case data (案件数据) as (label, text) rows; bookkeeping keys are left out."""
    return Display(instance.process_key).rows(data, extra=CASE_LABELS)


def history_rows(instance, entries):
    """The history (办理记录) as dicts a template only prints: ``at`` (Beijing time),
    ``kind`` (the raw kind, for styling), ``kind_label``, ``task_name``, ``actor``,
    ``system`` (a timer or cancellation: no one acted), ``effect`` (its label or None),
    ``fields`` ((label, text) rows), ``to`` and ``note``."""
    display = Display(instance.process_key)
    rows = []
    for entry in entries:
        detail = entry.detail or {}
        effect = detail.get("effect") if entry.kind == "effect" else None
        if isinstance(detail.get("data"), dict):
            items = display.rows(detail["data"], keep_unlabelled=True)
        elif effect:
            items = display.rows({k: v for k, v in detail.items() if k != "effect"},
                                 extra=EFFECT_DETAILS)
        else:
            items = []
        rows.append({
            "at": local_time(entry.at),
            "kind": entry.kind,
            "kind_label": gettext(HISTORY_KINDS[entry.kind]) if entry.kind in HISTORY_KINDS
            else entry.kind,
            "task_name": entry.task_name,
            "actor": entry.actor.display_name if entry.actor else None,
            "system": entry.actor is None and entry.kind in ("timer", "cancelled"),
            "effect": (gettext(EFFECTS[effect]) if effect in EFFECTS else effect)
            if effect else None,
            "fields": items,
            "to": detail.get("to"),
            "note": detail.get("note"),
        })
    return rows


def readonly_case(instance, form, data):
    """The case data a task form shows its readonly fields from, with codes a readonly text
    field would print raw (tea, ordinary, UTC times) turned into what they stand for."""
    display = Display(instance.process_key)
    shown = dict(data)
    for spec in form.fields:
        if spec.readonly and spec.type == "string" and isinstance(data.get(spec.name), str):
            shown[spec.name] = display.value(spec.name, data[spec.name])
    return shown


def licence_state(status):
    """A licence's status in words: 有效, 待审批, 已撤销..."""
    return gettext(LICENCE_STATES[status]) if status in LICENCE_STATES else status


def register(app):
    app.jinja_env.filters["licence_state"] = licence_state
