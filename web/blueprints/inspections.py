"""Sampling inspection pages (抽检): the plan with the risk-weighted draw, and the results.

Quality staff plan an inspection here (a licence picked by hand, or drawn at random with
the weights shown) and the case then runs through the inbox; protection, the office and
leadership read the inspections and their results per dimension.
"""

from functools import partial

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import cases, inspections
from engine.errors import ValidationFailed
from engine.forms import load_html
from web.views_common import commit

bp = Blueprint("inspections", __name__, url_prefix="/inspections")

MAX_DRAW = 20


def _draw_args():
    """(count, seed) from the query string, or (None, None) when no draw was asked for."""
    if not request.args.get("draw"):
        return None, None
    try:
        count = max(1, min(MAX_DRAW, int(request.args["draw"])))
    except ValueError:
        count = 1
    seed = (request.args.get("seed") or "").strip()[:40] or None
    return count, seed


def _page(values=None, errors=None, status=200):
    weights = inspections.risk_weights()
    count, seed = _draw_args()
    drawn = inspections.draw(count, seed, weights) if count and weights else []
    total = sum(item["weight"] for item in weights)
    return render_template(
        "inspections.html", weights=weights, total_weight=total, drawn=drawn, seed=seed,
        count=count, items=inspections.list_inspections(), values=values or {},
        errors=errors or {}, can_plan=inspections.may_start(current_user),
        target_kinds=inspections.TARGET_KINDS, statuses=inspections.STATUSES,
        results=inspections.RESULTS), status


@bp.route("/")
@login_required
def index():
    inspections.check_staff(current_user)
    return _page()


@bp.route("/new", methods=["POST"])
@login_required
def new():
    if not inspections.may_start(current_user):
        abort(403)
    try:
        instance = cases.start_case(current_user, inspections.PROCESS, request.form,
                                    partial(load_html, translate=_))
        commit()
    except ValidationFailed as exc:
        return _page(request.form, exc.fields, 422)
    flash(_("抽检案件已发起，案件编号 %(id)s；请在待办中登记抽样。", id=instance.id))
    return redirect(url_for("inbox.index"))


@bp.route("/<int:inspection_id>")
@login_required
def detail(inspection_id):
    inspections.check_staff(current_user)
    inspection = inspections.get_inspection(inspection_id)
    return render_template("inspection.html", inspection=inspection,
                           target_kinds=inspections.TARGET_KINDS,
                           statuses=inspections.STATUSES, results=inspections.RESULTS,
                           selections=inspections.SELECTIONS, actions=inspections.ACTIONS)
