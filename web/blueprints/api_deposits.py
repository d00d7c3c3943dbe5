"""Enterprises and their performance deposits in the JSON API (amounts in integer fen).

An enterprise user sees only its own enterprise; staff see every enterprise, and its
amounts when they may read deposits (``ledger.DEPOSIT_READERS``).
"""

from flask import Blueprint, g
from flask_babel import gettext as _

from engine import deposits, ledger
from web.blueprints.api import _time, token_required

bp = Blueprint("api_deposits", __name__, url_prefix="/api/v1")


def position_json(position):
    return {"balance_fen": position.balance_fen, "frozen_fen": position.frozen_fen,
            "available_fen": position.available_fen, "advanced_fen": position.advanced_fen}


def entry_json(entry):
    return {
        "id": entry.id,
        "sequence": entry.sequence,
        "kind": entry.kind,
        "kind_name": _(ledger.KIND_NAMES[entry.kind]),
        "amount_fen": entry.amount_fen,
        "instance_id": entry.instance_id,
        "approved_by": entry.approver.username if entry.approver else None,
        "note": entry.note,
        "created_at": _time(entry.created_at),
    }


def dispute_json(dispute):
    return {
        "id": dispute.id,
        "instance_id": dispute.instance_id,
        "source": dispute.source,
        "status": dispute.status,
        "status_text": _(deposits.STATUSES[dispute.status]),
        "reason": dispute.reason,
        "disputed_fen": dispute.disputed_fen,
        "advance_fen": dispute.advance_fen,
        "settle_by": _time(dispute.settle_by),
        "settle_by_provisional": dispute.settle_by_provisional,
        "top_up_fen": dispute.top_up_fen,
        "top_up_by": _time(dispute.top_up_by),
        "top_up_by_provisional": dispute.top_up_by_provisional,
        "escalated": dispute.escalated_at is not None,
        "escalation": dispute.escalation,
        "decision": dispute.decision,
        "created_at": _time(dispute.created_at),
        "closed_at": _time(dispute.closed_at),
    }


@bp.route("/enterprises")
@token_required
def list_enterprises():
    enterprises = ledger.list_enterprises(g.api_user)
    sums = ledger.positions([e.id for e in enterprises])
    # Amounts only for those who may read deposits (and an enterprise, its own).
    amounts = g.api_user.enterprise_id is not None or ledger.may_read_deposits(g.api_user)
    hidden = dict.fromkeys(position_json(ledger.Position()), None)
    return {"items": [dict(
        {"id": e.id, "name": e.name, "kind": e.kind, "status": e.status,
         "deposit_required_fen": e.deposit_required_fen},
        **(position_json(sums.get(e.id, ledger.Position())) if amounts else hidden))
        for e in enterprises]}


@bp.route("/enterprises/<int:enterprise_id>/deposit")
@token_required
def deposit(enterprise_id):
    ledger.check_may_view(g.api_user, enterprise_id)
    enterprise = ledger.get_enterprise(enterprise_id)
    position = ledger.position(enterprise_id)
    return dict(
        {"enterprise_id": enterprise.id, "enterprise": enterprise.name,
         "required_fen": enterprise.deposit_required_fen or 0,
         "shortfall_fen": ledger.shortfall(enterprise, position),
         "held_fen": position.held_fen},
        **position_json(position),
        entries=[entry_json(e) for e in ledger.entries(enterprise_id)],
        disputes=[dispute_json(d) for d in deposits.disputes_of(enterprise_id)])
