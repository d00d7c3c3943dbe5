"""Complaint pages: the public filing and status pages (no account), and the staff list.

The label verify page links to ``/complaints/new?code=<label code>``, which fills the
code in; the status page is ``/complaints/<reference>``.
"""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import complaints, deploy
from engine.cases import start_form
from engine.errors import ValidationFailed
from engine.forms import describe, load_html
from web.blueprints.api_complaints import filing_limited
from web.blueprints.verify import public_limit
from web.views_common import commit

bp = Blueprint("complaints", __name__)


@bp.route("/complaints/new", methods=["GET", "POST"])
@filing_limited
def new():
    form = start_form(deploy.get_version(complaints.PROCESS))
    values = {"label_code": (request.args.get("code") or "").strip()[:200]}
    errors = {}

    if request.method == "POST":
        values = request.form
        try:
            complaint = complaints.file_complaint(load_html(form, request.form, translate=_))
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("投诉已提交。请记下投诉编号 %(reference)s，凭它查询办理进度。",
                    reference=complaints.format_reference(complaint.reference)))
            return redirect(url_for("complaints.status", reference=complaint.reference))

    return render_template("complaint_new.html", form=describe(form, _), values=values,
                           errors=errors), 422 if errors else 200


@bp.route("/complaints/lookup")
@public_limit
def lookup():
    reference = complaints.normalize_reference(request.args.get("reference"))
    if reference is None:
        flash(_("投诉编号格式不对，请核对后重试"))
        return redirect(url_for("complaints.new"))
    return redirect(url_for("complaints.status", reference=reference))


@bp.route("/complaints/<reference>")
@public_limit
def status(reference):
    complaint = complaints.find_by_reference(reference)
    return render_template("complaint_status.html", complaint=complaint,
                           reference=complaints.format_reference(complaint.reference),
                           status_text=_(complaints.STATUSES[complaint.status]))


@bp.route("/complaints")
@login_required
def index():
    escalated = {"1": True, "0": False}.get(request.args.get("escalated", ""))
    found = complaints.list_complaints(current_user, status=request.args.get("status") or None,
                                       escalated=escalated)
    return render_template("complaints.html", complaints=found, statuses=complaints.STATUSES,
                           channels=complaints.CHANNELS, escalated=escalated,
                           format_reference=complaints.format_reference)
