"""Case pages: status, open tasks, history, and the data gathered so far."""

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from engine import inbox, runtime
from web import display

bp = Blueprint("cases", __name__)


@bp.route("/cases")
@login_required
def index():
    return render_template("cases.html", cases=inbox.instance_ids_for(current_user))


@bp.route("/cases/<int:instance_id>")
@login_required
def show(instance_id):
    instance = inbox.get_instance(current_user, instance_id)
    return render_template(
        "case.html", instance=instance, tasks=runtime.open_tasks(instance),
        history=display.history_rows(instance, runtime.history(instance)),
        summary=display.case_summary(instance, runtime.case_data(instance)))
