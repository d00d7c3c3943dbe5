"""Login and logout for the web UI (sessions); API tokens live in the API blueprint.

Failed sign-ins are limited (``LOGIN_RATE_LIMIT``) per client address and per username,
for the login form and ``POST /api/v1/auth/token`` together, so that guessing passwords
on one does not get a fresh budget on the other. Only failures count: a colleague who
signs in and out all day is never stopped. The counts live in the Flask-Limiter storage
of the public verification limit (``RATELIMIT_STORAGE_URI``).
"""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import login_required, login_user, logout_user

from engine import accounts
from engine.db import session
from engine.errors import N_, NotAuthenticated
from engine.models import User
from web.blueprints.verify import limiter
from web.extensions import login_manager
from web.views_common import safe_next

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = N_("请先登录")
login_manager.localize_callback = gettext


# A username longer than any account's is counted by its first characters only.
USERNAME_KEY_LENGTH = 150


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_unlimited():
    return not current_app.config["RATELIMIT_ENABLED"] or not _login_limit()


def _attempted_username():
    """The username a sign-in names, from the form or the JSON body ("" when none)."""
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return "user:" + (name[:USERNAME_KEY_LENGTH] if isinstance(name, str) else "")


def _failed(response):
    return response.status_code >= 400


def _login_attempt_limits():
    common = dict(methods=["POST"], exempt_when=_login_unlimited, deduct_when=_failed)
    by_address = limiter.shared_limit(_login_limit, scope="login-address",
                                      key_func=get_remote_address, **common)
    by_username = limiter.shared_limit(_login_limit, scope="login-username",
                                       key_func=_attempted_username, **common)

    def decorate(view):
        return by_address(by_username(view))
    return decorate


limit_login_attempts = _login_attempt_limits()


@login_manager.user_loader
def load_user(user_id):
    try:
        return session().get(User, int(user_id))
    except ValueError:
        return None


@bp.route("/login", methods=["GET", "POST"])
@limit_login_attempts
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
