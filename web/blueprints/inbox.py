"""The staff inbox and task pages: list, claim, assign, delegate, complete."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import inbox, licensing, runtime
from engine.errors import ValidationFailed
from engine.forms import describe, load_html
from web import display
from web.hardening import DB_INT_MAX
from web.views_common import commit, forms, load_task_values, safe_next

bp = Blueprint("inbox", __name__)


def _filters():
    args = request.args
    overdue = {"1": True, "0": False}.get(args.get("overdue", ""))
    enterprise = args.get("enterprise", "")
    return {
        "group": args.get("group") or None,
        "mine": args.get("mine") == "1",
        "process": args.get("process") or None,
        "overdue": overdue,
        "enterprise": _bounded(enterprise),
    }


def _bounded(text, default=None):
    """A positive integer typed in a query string, or ``default`` when it is not one (or is
    too large for any id or page)."""
    return int(text) if text.isdecimal() and 0 < int(text) <= DB_INT_MAX else default


@bp.route("/inbox")
@login_required
def index():
    filters = _filters()
    page = _bounded(request.args.get("page", "1"), default=1)
    result = inbox.list_tasks(current_user, page=page,
                              per_page=current_app.config["PAGE_SIZE"], **filters)
    return render_template("inbox.html", page=result, filters=filters)


@bp.route("/tasks/<int:task_id>", methods=["GET", "POST"])
@login_required
def task(task_id):
    task = inbox.get_task(current_user, task_id)
    form = forms().get(task.form) if task.form else None
    instance = task.instance
    data = runtime.case_data(instance, task.task_uuid)
    errors, values = {}, data

    if request.method == "POST" and form is not None:
        values = request.form
        try:
            typed = load_task_values(
                task, form, lambda f: load_html(f, request.form, translate=_))
            inbox.complete(current_user, task_id, typed)
            commit()
        except ValidationFailed as exc:
            errors = {name: [_(m) for m in messages] for name, messages in exc.fields.items()}
        else:
            flash(_("任务已办结：%(name)s", name=task.name))
            return redirect(url_for("portal.index") if current_user.enterprise_id
                            else url_for("inbox.index"))

    status = 422 if errors else 200
    return render_template(
        "task.html", task=task, form=describe(form, _) if form else None, values=values,
        errors=errors, instance=instance,
        data=display.readonly_case(instance, form, data) if form else data,
        summary=display.case_summary(instance, data), standard=licensing.standard_for_task(task),
        history=display.history_rows(instance, runtime.history(instance))), status


def _task_action(task_id, action, message, *args):
    action(current_user, task_id, *args)
    commit()
    flash(message)
    return redirect(safe_next(request.form.get("next"), url_for("inbox.index")))


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@login_required
def claim(task_id):
    return _task_action(task_id, inbox.claim_task, _("已签收"))


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@login_required
def unclaim(task_id):
    return _task_action(task_id, inbox.unclaim_task, _("已释放"))


@bp.route("/tasks/<int:task_id>/assign", methods=["POST"])
@login_required
def assign(task_id):
    return _task_action(task_id, inbox.assign_task, _("已分派"),
                        request.form.get("assignee", ""))


@bp.route("/tasks/<int:task_id>/delegate", methods=["POST"])
@login_required
def delegate(task_id):
    return _task_action(task_id, inbox.delegate_task, _("已委托"),
                        request.form.get("delegate", ""))


@bp.route("/tasks/<int:task_id>/return", methods=["POST"])
@login_required
def give_back(task_id):
    return _task_action(task_id, inbox.return_task, _("已交回"), request.form.get("note", ""))
