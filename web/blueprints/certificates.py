"""The certificates page (三品一标证书): quality staff record certificates; they, market,
the office and leadership list them, expired ones marked."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import ledger, licensing
from engine.errors import ValidationFailed
from web.blueprints.inbox import _bounded
from web.views_common import commit

bp = Blueprint("certificates", __name__, url_prefix="/quality/certificates")

FIELDS = ("number", "grade", "holder", "enterprise_id", "product", "scale", "valid_from",
          "valid_until")


def _page(values=None, errors=None, status=200):
    enterprise = _bounded(request.args.get("enterprise", ""))
    scope = licensing.certificate_scope(current_user, enterprise)
    certificates = licensing.list_certificates(scope)
    grades = licensing.list_grades()
    return render_template(
        "certificates.html", certificates=certificates,
        states={c.id: licensing.certificate_state(c) for c in certificates},
        state_names=licensing.CERTIFICATE_STATES, products=licensing.PRODUCTS,
        grades=[g for g in grades if g.code in licensing.CERTIFIED_GRADES],
        grade_by_code={g.code: g for g in grades},
        enterprises=ledger.list_enterprises(current_user),
        may_record=licensing.may_record_certificates(current_user),
        values=values or {}, errors=errors or {}), status


@bp.route("")
@login_required
def index():
    return _page()


@bp.route("", methods=["POST"])
@login_required
def record():
    licensing.check_may_record_certificates(current_user)
    values = {name: request.form.get(name, "") for name in FIELDS}
    try:
        certificate = licensing.record_certificate(
            values["number"], values["grade"], values["holder"], values["product"],
            values["scale"], values["valid_from"], values["valid_until"],
            enterprise_id=values["enterprise_id"] or None)
        commit()
    except ValidationFailed as exc:
        return _page(values, exc.fields, 422)
    flash(_("证书已登记：%(number)s", number=certificate.number))
    return redirect(url_for("certificates.index"))
