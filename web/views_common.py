"""What every view and template shares: the commit at the edge, formatting, the language switch."""

from zoneinfo import ZoneInfo

from flask import current_app, redirect, request, session, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from engine import clock, services
from engine.accounts import GROUPS
from engine.errors import Conflict, ValidationFailed
from web.extensions import db

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def load_task_values(task, form, load):
    """The submitted values of ``task``'s form, typed by ``load`` (the HTML or the JSON
    loader); when they are refused, the task's own service checks run on the fields that
    passed, so that one submission shows every error at once."""
    try:
        return load(form)
    except ValidationFailed as exc:
        more = services.field_problems(task, getattr(exc, "valid_data", {}))
        for name, messages in more.items():
            exc.fields.setdefault(name, []).extend(messages)
        raise


def commit():
    """Commit the request's unit of work; a lost race becomes a 409."""
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise Conflict("另一个操作同时修改了此案件，请刷新后重试") from None
    except OperationalError as exc:
        db.session.rollback()
        from web.errors import is_lost_race

        if is_lost_race(exc):
            raise Conflict("另一个操作同时修改了此案件，请刷新后重试") from None
        raise


def forms():
    return current_app.extensions["brand_forms"]


def local_time(value, fmt="%Y-%m-%d %H:%M"):
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(SHANGHAI).strftime(fmt)


def yuan(fen):
    """Integer fen shown as yuan with two decimals ("¥12,345.60")."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def group_name(group_id):
    english = str(get_locale()) == "en"
    for gid, zh, en in GROUPS:
        if gid == group_id:
            return en if english else zh
    return group_id


def register(app):
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.filters["group_name"] = group_name

    @app.context_processor
    def globals_for_templates():
        return {
            "now": clock.now(),
            "locale": str(get_locale()),
            "demo_mode": app.config["MODE"] != "production",
            "is_overdue": lambda t: t.due_at is not None and t.due_at < clock.now(),
            "_": gettext,
            "instance_states": {"running": gettext("办理中"), "completed": gettext("已办结"),
                                "error": gettext("出错"), "cancelled": gettext("已撤销")},
            "enterprise_states": {
                "registered": gettext("未申请"), "applying": gettext("审核中"),
                "admitted": gettext("已准入"), "rejected": gettext("未准入"),
                "lapsed": gettext("申请已失效"), "expelled": gettext("已清退")},
            "history_kinds": {
                "started": gettext("发起"), "completed": gettext("办结"),
                "claimed": gettext("签收"), "unclaimed": gettext("释放"),
                "assigned": gettext("分派"), "delegated": gettext("委托"),
                "returned": gettext("交回"), "timer": gettext("定时器触发"),
                "cancelled": gettext("取消"), "effect": gettext("业务处理")},
        }

    @app.route("/lang/<code>")
    def switch_language(code):
        if code in ("zh_CN", "en"):
            session["locale"] = code
        target = request.referrer or ""
        if not target.startswith(request.host_url):
            target = url_for("home")
        return redirect(target)

    @app.route("/")
    def home():
        """The front door: staff to their inbox, enterprises to their portal, and everyone
        else (consumers, visitors) to the public brand portal, which links the staff login."""
        if current_user.is_authenticated:
            if current_user.enterprise_id is not None:
                return redirect(url_for("portal.index"))
            return redirect(url_for("inbox.index"))
        return redirect(url_for("brand.home"))


def safe_next(target, default):
    """A local path to go back to, never another site."""
    # Browsers read a backslash as a slash: "/\\evil.example" would leave the site.
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return default
