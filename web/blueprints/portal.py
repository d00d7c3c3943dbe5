"""The enterprise portal: apply for admission, follow the status, answer requests."""

from functools import partial

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import cases, deploy, inbox
from engine.db import session
from engine.errors import ValidationFailed
from engine.forms import describe, load_html
from engine.models import Enterprise
from web.views_common import commit

bp = Blueprint("portal", __name__, url_prefix="/portal")

ADMISSION = "admission_review"
LICENCE = "licence_grant"


def _enterprise():
    if current_user.enterprise_id is None:
        abort(403)
    return session().get(Enterprise, current_user.enterprise_id)


@bp.route("/")
@login_required
def index():
    enterprise = _enterprise()
    tasks = inbox.list_tasks(current_user, per_page=50).items
    return render_template("portal.html", enterprise=enterprise, tasks=tasks,
                           cases=inbox.instance_ids_for(current_user))


# The processes an enterprise starts from the portal, and where each leads afterwards.
STARTABLE = {ADMISSION: "portal.index", LICENCE: "portal_labels.licences"}


@bp.route("/apply", methods=["GET", "POST"], defaults={"process_key": ADMISSION})
@bp.route("/apply/<process_key>", methods=["GET", "POST"])
@login_required
def apply(process_key):
    enterprise = _enterprise()
    if process_key not in STARTABLE:
        abort(404)
    form = cases.start_form(deploy.get_version(process_key))
    errors, values = {}, {"enterprise_name": enterprise.name}

    if request.method == "POST":
        values = request.form
        try:
            instance = cases.start_case(current_user, process_key, request.form,
                                        partial(load_html, translate=_))
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("申请已提交，案件编号 %(id)s", id=instance.id))
            return redirect(url_for(STARTABLE[process_key]))

    return render_template("apply.html", form=describe(form, _), values=values, errors=errors,
                           enterprise=enterprise), 422 if errors else 200
