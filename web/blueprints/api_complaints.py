"""Complaints in the JSON API.

``POST /complaints`` and ``GET /complaints/<reference>`` are public (no token): a
consumer files and follows a complaint with its reference number. Filing is
rate-limited per client address by a rule staff edit (``complaint.filings_per_hour``).
``GET /complaints`` is the staff list.
"""

from flask import Blueprint, current_app, g, request, url_for
from flask_babel import gettext as _

from engine import complaints, deploy, rules
from engine.cases import start_form
from engine.errors import N_, ValidationFailed
from engine.forms import load_json
from web.blueprints.api import _bool_arg, _time, json_object, token_required
from web.blueprints.verify import limiter, public_limit
from web.views_common import commit

bp = Blueprint("api_complaints", __name__, url_prefix="/api/v1")

NOT_A_STATUS = N_("取值无效")


def filing_limit():
    return f"{rules.get_rule('complaint.filings_per_hour')} per hour"


def limits_off():
    return not current_app.config["RATELIMIT_ENABLED"]


# One budget for the page and the API: filing through either counts against both.
filing_limited = limiter.shared_limit(filing_limit, scope="complaint-filing", methods=["POST"],
                                      exempt_when=limits_off)


def public_json(complaint):
    """What anyone holding the reference may see: never the complainant's details."""
    return {
        "reference": complaints.format_reference(complaint.reference),
        "status": complaint.status,
        "status_text": _(complaints.STATUSES[complaint.status]),
        "channel": complaint.channel,
        "product": complaint.product,
        "filed_at": _time(complaint.created_at),
        "accept_by": _time(complaint.accept_by),
        "accept_by_provisional": complaint.accept_by_provisional,
        "accepted_at": _time(complaint.accepted_at),
        "mediation_by": _time(complaint.mediation_by),
        "mediation_by_provisional": complaint.mediation_by_provisional,
        "escalated": complaint.escalated,
        "outcome_note": complaint.outcome_note,
        "awarded_fen": complaint.awarded_fen,
        "closed_at": _time(complaint.closed_at),
    }


def staff_json(complaint):
    return dict(public_json(complaint), id=complaint.id, instance_id=complaint.instance_id,
                complainant_name=complaint.complainant_name,
                complainant_phone=complaint.complainant_phone,
                description=complaint.description, claimed_fen=complaint.claimed_fen,
                enterprise_id=complaint.enterprise_id, label_code=complaint.label_code,
                escalated_at=_time(complaint.escalated_at), overdue=complaint.overdue,
                dispute_instance_id=complaint.dispute_instance_id)


@bp.route("/complaints", methods=["POST"])
@filing_limited
def file_complaint():
    body = json_object()
    form = start_form(deploy.get_version(complaints.PROCESS))
    values = load_json(form, body, translate=_)
    complaint = complaints.file_complaint(values)
    commit()
    return dict(public_json(complaint), status_url=url_for(
        "complaints.status", reference=complaint.reference, _external=True)), 201


@bp.route("/complaints/<reference>")
@public_limit
def complaint_status(reference):
    return public_json(complaints.find_by_reference(reference))


@bp.route("/complaints")
@token_required
def list_complaints():
    status = request.args.get("status") or None
    if status is not None and status not in complaints.STATUSES:
        raise ValidationFailed("参数取值无效", fields={"status": [NOT_A_STATUS]})
    found = complaints.list_complaints(g.api_user, status=status,
                                       escalated=_bool_arg("escalated"))
    return {"items": [staff_json(c) for c in found]}
