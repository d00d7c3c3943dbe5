"""The enterprise portal's licence pages: issue label batches, download them, record the trace.

The market department may open the same pages (it also issues batches for an
enterprise); everyone else gets 403.
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import labels, licensing, trace
from engine.errors import BrandError, ValidationFailed
from web.label_exports import csv_response, pdf_response
from web.views_common import commit

bp = Blueprint("portal_labels", __name__, url_prefix="/portal")


def _licence(licence_id):
    licence = licensing.get_licence(licence_id)
    if not labels.may_manage_labels(current_user, licence):
        abort(403)
    return licence


def _batch(batch_id):
    batch = labels.get_batch(batch_id)
    if not labels.may_manage_labels(current_user, batch.licence):
        abort(403)
    return batch


def _render(licence, errors=None, values=None, status=200):
    batches = labels.list_batches(licence.id)
    return render_template(
        "portal_licence.html", licence=licence, batches=batches,
        batch_pages={b.id: labels.batch_page_count(b) for b in batches},
        events=trace.list_trace_events(licence.id), kinds=trace.KINDS,
        products=licensing.PRODUCTS, errors=errors or {}, values=values or {},
        page_size=_pdf_page_chunk()), status


def _pdf_page_chunk():
    return current_app.config["LABEL_PDF_MAX_PAGES"]


@bp.route("/licences")
@login_required
def licences():
    if current_user.enterprise_id is None:
        abort(403)
    return render_template("portal_licences.html", products=licensing.PRODUCTS,
                           licences=licensing.list_licences(current_user.enterprise_id))


@bp.route("/licences/<int:licence_id>")
@login_required
def licence(licence_id):
    return _render(_licence(licence_id))


@bp.route("/licences/<int:licence_id>/label-batches", methods=["POST"])
@login_required
def issue_batch(licence_id):
    licence = _licence(licence_id)
    try:
        batch = labels.issue_label_batch(licence, request.form.get("count", ""), current_user)
        commit()
    except ValidationFailed as exc:
        return _render(licence, errors=exc.fields, values=request.form, status=422)
    except BrandError as exc:
        flash(_(exc.message))
        return redirect(url_for("portal_labels.licence", licence_id=licence.id))
    flash(_("已发放 %(count)s 枚标签（批次 %(id)s）", count=batch.count, id=batch.id))
    return redirect(url_for("portal_labels.licence", licence_id=licence.id))


@bp.route("/licences/<int:licence_id>/trace-events", methods=["POST"])
@login_required
def add_trace_event(licence_id):
    licence = _licence(licence_id)
    try:
        trace.record_trace_event(licence, current_user, request.form)
        commit()
    except ValidationFailed as exc:
        return _render(licence, errors=exc.fields, values=request.form, status=422)
    flash(_("追溯信息已登记"))
    return redirect(url_for("portal_labels.licence", licence_id=licence.id))


@bp.route("/label-batches/<int:batch_id>/cancel", methods=["POST"])
@login_required
def cancel_batch(batch_id):
    batch = _batch(batch_id)
    labels.cancel_label_batch(batch, current_user, request.form.get("reason", ""))
    commit()
    flash(_("批次 %(id)s 已作废，其标签查验将显示为已失效", id=batch.id))
    return redirect(url_for("portal_labels.licence", licence_id=batch.licence_id))


@bp.route("/label-batches/<int:batch_id>/codes.csv")
@login_required
def batch_csv(batch_id):
    return csv_response(_batch(batch_id))


@bp.route("/label-batches/<int:batch_id>/labels.pdf")
@login_required
def batch_pdf(batch_id):
    return pdf_response(_batch(batch_id))
