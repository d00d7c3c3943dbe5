"""Sampling inspections (抽检) in the JSON API: the inspections with their results per
dimension, and the risk weights behind the random draw. Amounts in integer fen.

Quality, protection, the office and leadership read them; quality starts a case with the
generic ``POST /processes/inspection/instances``.
"""

from flask import Blueprint, g, request
from flask_babel import gettext as _

from engine import inspections
from web.blueprints.api import _int_arg, _time, token_required

bp = Blueprint("api_inspections", __name__, url_prefix="/api/v1")


def inspection_json(inspection):
    return {
        "id": inspection.id,
        "instance_id": inspection.instance_id,
        "licence_id": inspection.licence_id,
        "licence_number": inspection.licence.number,
        "enterprise_id": inspection.enterprise_id,
        "enterprise": inspection.enterprise.name,
        "grade": inspection.grade_code,
        "target_kind": inspection.target_kind,
        "target_detail": inspection.target_detail,
        "selection": inspection.selection,
        "risk_weight": inspection.risk_weight,
        "status": inspection.status,
        "status_text": _(inspections.STATUSES[inspection.status]),
        "lab_name": inspection.lab_name,
        "sample_refs": [s.strip() for s in (inspection.sample_refs or "").splitlines()
                        if s.strip()],
        "sampled_on": inspection.sampled_on.isoformat() if inspection.sampled_on else None,
        "report_ref": inspection.report_ref,
        "result": inspection.result,
        "results": [{"dimension": r.dimension_name, "requirement": r.requirement,
                     "passed": r.passed, "measured": r.measured} for r in inspection.results],
        "freeze_fen": inspection.freeze_fen,
        "dispute_instance_id": inspection.dispute_instance_id,
        "failure_count": inspection.failure_count,
        "expulsion_grounds": inspection.expulsion_grounds,
        "protection_action": inspection.protection_action,
        "expulsion_instance_id": inspection.expulsion_instance_id,
        "trace_event_id": inspection.trace_event_id,
        "planned_at": _time(inspection.planned_at),
        "recorded_at": _time(inspection.recorded_at),
    }


def weight_json(item):
    licence = item["licence"]
    return {"licence_id": licence.id, "licence_number": licence.number,
            "enterprise_id": licence.enterprise_id, "enterprise": licence.enterprise.name,
            "complaints": item["complaints"], "suspect_labels": item["suspect_labels"],
            "weight": item["weight"]}


@bp.route("/inspections")
@token_required
def list_inspections():
    """Sampling inspections, newest first (filter ``enterprise``)"""
    inspections.check_staff(g.api_user)
    enterprise = _int_arg("enterprise", None)
    return {"items": [inspection_json(i)
                      for i in inspections.list_inspections(enterprise_id=enterprise)]}


@bp.route("/inspections/<int:inspection_id>")
@token_required
def get_inspection(inspection_id):
    """One sampling inspection with its results per dimension"""
    inspections.check_staff(g.api_user)
    return inspection_json(inspections.get_inspection(inspection_id))


@bp.route("/inspections/risk")
@token_required
def risk():
    """Risk weights of the active licences; ``draw`` (with ``seed``) draws that many"""
    inspections.check_staff(g.api_user)
    weights = inspections.risk_weights()
    body = {"items": [weight_json(item) for item in weights]}
    count = _int_arg("draw", None, maximum=100)
    if count is not None:
        seed = (request.args.get("seed") or "").strip()[:40] or None
        body["seed"] = seed
        body["drawn"] = [weight_json(item) for item in inspections.draw(count, seed, weights)]
    return body
