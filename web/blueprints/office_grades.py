"""The quality grades page: office staff keep each grade's standard (its dimensions) as data
(``engine.licensing``); quality staff see the standard where they verify an application."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import licensing
from engine.errors import ValidationFailed
from web.views_common import commit

bp = Blueprint("office_grades", __name__, url_prefix="/office/grades")


def _page(errors=None, values=None, status=200):
    """The grades with their dimensions; ``errors`` and ``values`` are keyed by the form that
    failed (``new-<grade>`` or ``dimension-<id>``) so that it is shown again as typed."""
    return render_template("office_grades.html", grades=licensing.list_grades(),
                           errors=errors or {}, values=values or {}), status


def _saved(action, form_id, message):
    """Run a change, commit, and go back to the page; a refused change shows the page again
    with the field errors of the form ``form_id`` and what was typed in it (422)."""
    try:
        action()
        commit()
    except ValidationFailed as exc:
        typed = {"name": request.form.get("name", ""),
                 "requirement": request.form.get("requirement", "")}
        return _page({form_id: exc.fields}, {form_id: typed}, 422)
    flash(message)
    return redirect(url_for("office_grades.index"))


@bp.route("")
@login_required
def index():
    licensing.check_may_edit_standards(current_user)
    return _page()


@bp.route("/<code>/dimensions", methods=["POST"])
@login_required
def add(code):
    licensing.check_may_edit_standards(current_user)
    grade = licensing.get_grade(code)
    return _saved(lambda: licensing.add_dimension(grade.code, request.form.get("name"),
                                                  request.form.get("requirement")),
                  f"new-{grade.code}",
                  _("已增加质量标准维度：%(name)s", name=request.form.get("name", "").strip()))


@bp.route("/dimensions/<int:dimension_id>", methods=["POST"])
@login_required
def edit(dimension_id):
    licensing.check_may_edit_standards(current_user)
    licensing.get_dimension(dimension_id)
    return _saved(lambda: licensing.update_dimension(dimension_id, request.form.get("name"),
                                                     request.form.get("requirement")),
                  f"dimension-{dimension_id}",
                  _("已修改质量标准维度：%(name)s", name=request.form.get("name", "").strip()))


@bp.route("/dimensions/<int:dimension_id>/delete", methods=["POST"])
@login_required
def remove(dimension_id):
    licensing.check_may_edit_standards(current_user)
    name = licensing.get_dimension(dimension_id).name
    licensing.remove_dimension(dimension_id)
    commit()
    flash(_("已删除质量标准维度：%(name)s", name=name))
    return redirect(url_for("office_grades.index"))
