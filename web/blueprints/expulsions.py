"""Staff start a forced expulsion case from a page (the API uses the generic start route)."""

from functools import partial

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import cases, deploy, expulsion
from engine.errors import ValidationFailed
from engine.forms import describe, load_html
from web.views_common import commit

bp = Blueprint("expulsions", __name__)


@bp.route("/expulsions/new", methods=["GET", "POST"])
@login_required
def new():
    version = deploy.get_version(expulsion.PROCESS)
    if not expulsion.may_start(current_user):
        abort(403)
    form = cases.start_form(version)
    values = {"enterprise_id": request.args.get("enterprise", "")}
    errors = {}

    if request.method == "POST":
        values = request.form
        try:
            instance = cases.start_case(current_user, expulsion.PROCESS, request.form,
                                        partial(load_html, translate=_))
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("强制清退案件已发起，案件编号 %(id)s", id=instance.id))
            return redirect(url_for("inbox.index"))

    return render_template("expulsion_new.html", form=describe(form, _), values=values,
                           errors=errors), 422 if errors else 200
