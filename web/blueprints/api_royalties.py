"""Royalties (品牌权费) in the JSON API; amounts in integer fen.

An enterprise user reads only its own enterprise's royalties; finance, market, the office
and leadership read every enterprise's and the yearly totals.
"""

from flask import Blueprint, g
from flask_babel import gettext as _

from engine import ledger, royalties
from web.blueprints.api import _time, token_required

bp = Blueprint("api_royalties", __name__, url_prefix="/api/v1")


def royalty_json(royalty):
    return {
        "id": royalty.id,
        "instance_id": royalty.instance_id,
        "licence_id": royalty.licence_id,
        "licence_number": royalty.licence.number,
        "enterprise_id": royalty.enterprise_id,
        "period_start": royalty.period_start.isoformat(),
        "period_end": royalty.period_end.isoformat(),
        "period": royalties.period_label(royalty.period_start, royalty.period_end),
        "status": royalty.status,
        "status_text": _(royalties.STATUSES[royalty.status]),
        "royalty_basis_points": royalty.royalty_basis_points,
        "declared_units": royalty.declared_units,
        "declared_sales_fen": royalty.declared_sales_fen,
        "labels_available": royalty.labels_available,
        "labels_scanned": royalty.labels_scanned,
        "flag": royalty.flag,
        "flag_text": _(royalties.FLAGS[royalty.flag]) if royalty.flag else None,
        "royalty_fen": royalty.royalty_fen,
        "declare_by": _time(royalty.declare_by),
        "due_on": _time(royalty.due_on),
        "due_provisional": royalty.due_provisional,
        "overdue": royalty.overdue,
        "reminded_at": _time(royalty.reminded_at),
        "escalated_at": _time(royalty.escalated_at),
        "decision": royalty.decision,
        "paid_at": _time(royalty.paid_at),
        "payment_reference": royalty.payment_reference,
    }


@bp.route("/enterprises/<int:enterprise_id>/royalties")
@token_required
def enterprise_royalties(enterprise_id):
    """An enterprise's royalty ledger: every period, and its totals in fen"""
    royalties.check_may_view(g.api_user, enterprise_id)
    enterprise = ledger.get_enterprise(enterprise_id)
    rows = royalties.royalties_of(enterprise_id)
    return dict({"enterprise_id": enterprise.id, "enterprise": enterprise.name,
                 "items": [royalty_json(r) for r in rows]}, **royalties.totals(rows))


@bp.route("/royalties/yearly")
@token_required
def yearly():
    """Royalties per year for the office: assessed, collected, outstanding (fen)"""
    royalties.check_staff(g.api_user)
    return {"items": royalties.yearly_totals()}
