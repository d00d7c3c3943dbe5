"""Login and logout for the web UI (sessions); API tokens live in the API blueprint."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user

from engine import accounts
from engine.db import session
from engine.errors import N_, NotAuthenticated
from engine.models import User
from web.extensions import login_manager
from web.views_common import safe_next

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = N_("请先登录")
login_manager.localize_callback = gettext


@login_manager.user_loader
def load_user(user_id):
    try:
        return session().get(User, int(user_id))
    except ValueError:
        return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        try:
            user = accounts.authenticate(request.form.get("username", ""),
                                         request.form.get("password", ""))
        except NotAuthenticated as exc:
            error = _(exc.message)
        else:
            login_user(user)
            return redirect(safe_next(request.args.get("next", ""), url_for("home")))
    return render_template("login.html", error=error), 401 if error else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash(_("已退出登录"))
    return redirect(url_for("auth.login"))
