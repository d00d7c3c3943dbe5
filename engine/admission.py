"""Admission review (准入审核): the domain effects its diagram calls by name.

The diagram decides the route; these functions change the enterprise's record
and the deposit ledger inside the same step, so a refused effect rolls the
step back with it.
"""

import logging

from sqlalchemy import select

from engine import clock, expulsion, ledger
from engine.db import session
from engine.errors import N_, Conflict, Forbidden, ValidationFailed
from engine.models import Enterprise, Instance
from engine.services import service_operation, start_guard

logger = logging.getLogger(__name__)


def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None or step.instance.enterprise_id is None:
        raise ValidationFailed("准入操作只能用于企业的案件")
    return step


def _enterprise(step):
    return session().get(Enterprise, step.instance.enterprise_id)


@start_guard("admission_review")
def check_can_apply(user, enterprise, data):
    """Refuse a second application while one runs or after admission."""
    if enterprise is None:
        raise Forbidden("只有企业用户可以提交准入申请")
    expulsion.refuse_if_barred(enterprise)
    if enterprise.status == "admitted":
        raise Conflict("该企业已准入，无需重复申请")
    running = session().scalar(select(Instance.id).where(
        Instance.enterprise_id == enterprise.id, Instance.process_key == "admission_review",
        Instance.status == "running").limit(1))
    if running is not None:
        raise Conflict("该企业已有正在审核的准入申请",
                       instance_id=running)


@service_operation
def open_application(task_data, **_params):
    """The application was filed: the enterprise is now applying, under the name it gave."""
    step = _step()
    enterprise = _enterprise(step)
    enterprise.status = "applying"
    enterprise.kind = task_data.get("kind") or enterprise.kind
    enterprise.name = task_data.get("enterprise_name") or enterprise.name
    enterprise.status_reason = None
    step.record("application_opened", enterprise=enterprise.name)
    return enterprise.status


@service_operation
def set_deposit_required(task_data, amount_fen=None, **_params):
    """Record the deposit the admitted enterprise must pay (from the deposit table)."""
    step = _step()
    amount = int(amount_fen if amount_fen is not None else task_data["deposit_required_fen"])
    if amount <= 0:
        raise ValidationFailed("保证金金额必须大于零")
    _enterprise(step).deposit_required_fen = amount
    step.record("deposit_required", amount_fen=amount)
    return amount


@service_operation
def admit_enterprise(task_data, **_params):
    """Finance confirmed the deposit: book it and mark the enterprise admitted."""
    step = _step()
    enterprise = _enterprise(step)
    amount = int(task_data.get("paid_amount_fen") or 0)
    if amount < (enterprise.deposit_required_fen or 0):
        too_little = N_("少于应缴金额")
        raise ValidationFailed("确认到账的保证金少于应缴金额",
                               fields={"paid_amount_fen": [too_little]})

    ledger.pay_in(enterprise.id, amount, instance_id=step.instance.id,
                  approved_by=getattr(step.actor, "id", None),
                  note=task_data.get("payment_reference"))
    enterprise.status = "admitted"
    enterprise.admitted_at = clock.now()
    enterprise.status_reason = None
    step.record("admitted", enterprise=enterprise.name, deposit_fen=amount)
    logger.info("enterprise %s admitted by instance %s", enterprise.id, step.instance.id)
    return "admitted"


@service_operation
def reject_application(task_data, reason=None, **_params):
    """Close the application as rejected, keeping the reasons the enterprise will see."""
    step = _step()
    enterprise = _enterprise(step)
    enterprise.status = "rejected"
    enterprise.status_reason = str(reason or "")[:2000]
    step.record("rejected", reason=enterprise.status_reason)
    return "rejected"


@service_operation
def lapse_application(task_data, **_params):
    """The supplement deadline passed without an answer: the application lapses."""
    step = _step()
    enterprise = _enterprise(step)
    enterprise.status = "lapsed"
    # The UI explains a lapse from the status itself, in the reader's language.
    enterprise.status_reason = None
    step.record("lapsed")
    return "lapsed"
