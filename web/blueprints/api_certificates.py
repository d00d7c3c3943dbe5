"""三品一标 certificates in the JSON API: quality staff record them; certificate staff list
them (filter ``enterprise``); an enterprise lists only its own."""

from flask import Blueprint, g
from flask_babel import gettext as _

from engine import licensing
from web.blueprints.api import _int_arg, json_object, token_required
from web.views_common import commit

bp = Blueprint("api_certificates", __name__, url_prefix="/api/v1")


def certificate_json(certificate):
    state = licensing.certificate_state(certificate)
    return {
        "id": certificate.id,
        "number": certificate.number,
        "grade": certificate.grade_code,
        "holder": certificate.holder,
        "enterprise_id": certificate.enterprise_id,
        "product": certificate.product,
        "scale": certificate.scale,
        "valid_from": certificate.valid_from.isoformat(),
        "valid_until": certificate.valid_until.isoformat(),
        "status": state,
        "status_text": _(licensing.CERTIFICATE_STATES[state]),
        "expired": state == "expired",
    }


@bp.route("/certificates")
@token_required
def list_certificates():
    """Certificates, latest expiry first (an enterprise sees only its own)"""
    enterprise = _int_arg("enterprise", None)
    scope = licensing.certificate_scope(g.api_user, enterprise)
    return {"items": [certificate_json(c) for c in licensing.list_certificates(scope)]}


@bp.route("/certificates", methods=["POST"])
@token_required
def record_certificate():
    """Quality staff record a certificate: number, grade, holder, product, scale, validity"""
    licensing.check_may_record_certificates(g.api_user)
    body = json_object()
    certificate = licensing.record_certificate(
        body.get("number"), body.get("grade"), body.get("holder"), body.get("product"),
        body.get("scale"), body.get("valid_from"), body.get("valid_until"),
        enterprise_id=body.get("enterprise_id"))
    commit()
    return certificate_json(certificate), 201
