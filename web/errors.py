"""Central error handlers: JSON under /api/, a page elsewhere; never a bare 500 for known cases."""

import logging
import time

from flask import current_app, render_template, request
from flask_babel import gettext
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.errors import N_, BrandError, Conflict
from web.extensions import db

logger = logging.getLogger(__name__)


# PostgreSQL SQLSTATEs of a transaction that lost to another: serialization failure, deadlock.
RACE_SQLSTATES = {"40001", "40P01"}


def is_lost_race(exc):
    """Whether a database error means another transaction won (a 409, not a 503)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in RACE_SQLSTATES
    return "database is locked" in str(exc.orig).lower()


def wants_json():
    return request.path.startswith("/api/")


def render_error(status, code, message, extra=None):
    if wants_json():
        body = {"code": code, "message": message}
        body.update(extra or {})
        return {"error": body}, status
    return render_template("error.html", status=status, message=message, extra=extra or {}), status


def _size(limit):
    """Bytes as a reader says them: "5 MB", "512 KB"."""
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{limit / 1024:g} KB" if limit >= 1024 else f"{limit} B"


LOGIN_ENDPOINTS = {"auth.login", "api.token"}


def _seconds_until_reset():
    """Seconds until the breached limit of this request lets the client in again."""
    from web.blueprints.verify import limiter

    breached = limiter.current_limit
    if breached is None:
        return 60
    return max(1, int(breached.reset_at - time.time()))


def register(app):
    @app.errorhandler(BrandError)
    def brand_error(exc):
        db.session.rollback()
        details = dict(exc.details)
        if "fields" in details:
            details["fields"] = {k: [gettext(m) for m in v] for k, v in details["fields"].items()}
        return render_error(exc.status, exc.code, gettext(exc.message), details)

    @app.errorhandler(StaleDataError)
    def stale(exc):
        return brand_error(Conflict("另一个操作同时修改了此案件，请刷新后重试"))

    @app.errorhandler(OperationalError)
    def operational(exc):
        db.session.rollback()
        if is_lost_race(exc):
            return brand_error(Conflict("另一个操作同时修改了此案件，请刷新后重试"))
        logger.exception("database error")
        return render_error(503, "database_unavailable", gettext("数据库暂时不可用，请稍后重试"))

    @app.errorhandler(IntegrityError)
    def integrity(exc):
        db.session.rollback()
        logger.warning("integrity error: %s", exc.orig)
        return brand_error(Conflict("数据与已有记录冲突，请刷新后重试"))

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    def out_of_range(exc):
        # A number or text the database cannot hold (an id beyond its integer range, a NUL
        # character): the input is wrong, whichever field it came in.
        db.session.rollback()
        logger.warning("value out of range on %s %s: %s", request.method, request.path, exc)
        return render_error(400, "out_of_range", gettext("提交的数值超出范围或含有无效字符"))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return render_error(413, "request_entity_too_large", gettext(
            "上传内容过大：一次请求不能超过 %(size)s", size=_size(limit)), {"limit": limit})

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(400, "csrf", gettext("表单已过期，请刷新页面后重新提交"))

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc):
        if request.endpoint not in LOGIN_ENDPOINTS:
            return http_error(exc)
        wait = _seconds_until_reset()
        message = gettext("登录失败次数过多，请 %(minutes)d 分钟后再试",
                          minutes=max(1, round(wait / 60)))
        if wants_json():
            response = current_app.make_response(
                ({"error": {"code": "too_many_login_attempts", "message": message}}, 429))
        else:
            response = current_app.make_response(
                (render_template("login.html", error=message), 429))
        response.headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc):
        messages = {
            400: N_("请求格式有误"), 401: N_("请先登录"), 403: N_("没有权限"),
            404: N_("页面不存在"),
            405: N_("不支持此请求方法"), 413: N_("上传内容过大"), 429: N_("请求过于频繁"),
        }
        message = gettext(messages.get(exc.code, exc.name))
        return render_error(exc.code, exc.name.lower().replace(" ", "_"), message)

    @app.errorhandler(Exception)
    def unexpected(exc):
        db.session.rollback()
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "internal_error",
                            gettext("系统内部错误，已记录，请联系信息化部门"))
