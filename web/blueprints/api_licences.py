"""Licences in the JSON API: list (filter ``enterprise``) and show, with quota used and left."""

from flask import Blueprint, g, request

from engine import licensing
from engine.errors import Forbidden
from web.blueprints.api import _int_arg, token_required

bp = Blueprint("api_licences", __name__, url_prefix="/api/v1")


def licence_json(licence):
    return {
        "id": licence.id,
        "number": licence.number,
        "enterprise_id": licence.enterprise_id,
        "enterprise": licence.enterprise.name,
        "product": licence.product,
        "grade": licence.grade_code,
        "status": licence.status,
        "base_location": licence.base_location,
        "max_quota": licence.max_quota,
        "label_quota": licence.label_quota,
        "quota_used": licence.labels_issued,
        "quota_left": licence.quota_left,
        "royalty_basis_points": licence.royalty_basis_points,
        "valid_from": licence.valid_from.isoformat() if licence.valid_from else None,
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "certificate": licence.certificate.number if licence.certificate else None,
    }


@bp.route("/licences")
@token_required
def list_licences():
    user = g.api_user
    enterprise = _int_arg("enterprise", None) if request.args.get("enterprise") else None
    if user.enterprise_id is not None:
        if enterprise not in (None, user.enterprise_id):
            raise Forbidden("只能查看本企业的授权")
        enterprise = user.enterprise_id
    licences = licensing.list_licences(enterprise, request.args.get("status") or None)
    return {"items": [licence_json(licence) for licence in licences]}


@bp.route("/licences/<int:licence_id>")
@token_required
def show_licence(licence_id):
    licence = licensing.get_licence(licence_id)
    if not licensing.licence_visible_to(g.api_user, licence):
        raise Forbidden("只能查看本企业的授权")
    return licence_json(licence)
