"""The rules page: office staff read and change the thresholds the code reads as data
(``engine.rules``); every change keeps who, when, the old value and the reason."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import rules
from engine.errors import Forbidden, ValidationFailed
from web.views_common import commit

bp = Blueprint("office_rules", __name__, url_prefix="/office")


def _check_office():
    if current_user.enterprise_id is not None or not current_user.group_ids & rules.RULE_EDITORS:
        raise Forbidden("只有品牌管理办公室可以修改规则")


def _page(errors=None, status=200):
    listed = rules.list_rules()
    history = {r["key"]: rules.rule_history(r["key"])[:5] for r in listed}
    return render_template("office_rules.html", rules=listed, history=history,
                           errors=errors or {}), status


@bp.route("/rules")
@login_required
def index():
    _check_office()
    return _page()


@bp.route("/rules/<key>", methods=["POST"])
@login_required
def change(key):
    _check_office()
    try:
        rules.set_rule(key, request.form.get("value", ""), current_user,
                       request.form.get("reason", ""))
        commit()
    except ValidationFailed as exc:
        return _page({key: [m for messages in exc.fields.values() for m in messages]}, 422)
    flash(_("规则已修改：%(key)s", key=key))
    return redirect(url_for("office_rules.index"))
