"""The JSON API under /api/v1: bearer tokens, tasks, processes, instances, the clock.

Every error is ``{"error": {"code", "message", ...}}`` with the status of the
``engine.errors`` class raised (see ``web/errors.py``).
"""

from functools import partial, wraps

from flask import Blueprint, current_app, g, request
from flask_babel import gettext as _

from engine import accounts, cases, clock, deploy, inbox, runtime
from engine.errors import N_, BadInput, Forbidden, NotAuthenticated, ValidationFailed
from engine.forms import describe, load_json
from engine.timers import fire_due_timers
from web import transaction
from web.blueprints.auth import limit_login_attempts
from web.hardening import DB_INT_MAX
from web.openapi import openapi_document
from web.views_common import commit, forms, load_task_values

bp = Blueprint("api", __name__, url_prefix="/api/v1")

CLOCK_GROUPS = {"it", "office"}

# Field messages, marked for the catalogue; the error handler translates them.
MUST_BE_OBJECT = N_("必须是对象")
MUST_BE_BOOLEAN = N_("应为 true 或 false")
MUST_BE_INTEGER = N_("应为整数")
OUT_OF_RANGE = N_("超出范围")
ONLY_ME = N_("只支持 me")
REQUIRED = N_("必填")
BAD_DURATION = N_("应为 ISO 8601 时长，如 P3D")


def json_object(optional=False):
    """The request's JSON body, which must be an object; with ``optional``, no body at all
    is an empty object (a list, a string or a number never is)."""
    if optional and not request.get_data(cache=True).strip():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("请求体必须是 JSON 对象")
    return body


def _data(body):
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise ValidationFailed("data 必须是对象", fields={"data": [MUST_BE_OBJECT]})
    return data


def token_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise NotAuthenticated("缺少 Authorization: Bearer 令牌")
        g.api_user = accounts.user_from_token(header[7:].strip(), current_app.secret_key,
                                              current_app.config["TOKEN_MAX_AGE"])
        return view(*args, **kwargs)
    return wrapper


def _bool_arg(name):
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValidationFailed("参数取值无效", fields={name: [MUST_BE_BOOLEAN]})


def _int_arg(name, default, minimum=1, maximum=None):
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValidationFailed("参数取值无效", fields={name: [MUST_BE_INTEGER]}) from None
    # Ids and page numbers beyond a database integer are out of range, never a crash.
    maximum = DB_INT_MAX if maximum is None else maximum
    if number < minimum or number > maximum:
        raise ValidationFailed("参数取值无效", fields={name: [OUT_OF_RANGE]})
    return number


# -- serialisation ---------------------------------------------------------------------------

def _time(value):
    return value.isoformat() + "Z" if value is not None else None


def task_json(task, with_form=False):
    body = {
        "id": task.id,
        "instance_id": task.instance_id,
        "process_key": task.process_key,
        "task": task.spec_name,
        "name": task.name,
        "group": task.group_id,
        "assignee": task.assignee.username if task.assignee else None,
        "state": task.state,
        "created_at": _time(task.created_at),
        "due_at": _time(task.due_at),
        "follow_up_at": _time(task.follow_up_at),
        "overdue": task.due_at is not None and task.state == "open"
        and task.due_at < clock.now(),
        "enterprise_id": task.enterprise_id,
    }
    if with_form:
        body["form"] = describe(forms().get(task.form), _) if task.form else None
    return body


def history_json(entry):
    return {
        "at": _time(entry.at),
        "actor": entry.actor.username if entry.actor else None,
        "kind": entry.kind,
        "task": entry.task_spec,
        "task_name": entry.task_name,
        "detail": entry.detail,
    }


def instance_json(instance):
    return {
        "id": instance.id,
        "process_key": instance.process_key,
        "version": instance.version.version,
        "status": instance.status,
        "title": instance.title,
        "enterprise_id": instance.enterprise_id,
        "enterprise_status": instance.enterprise.status if instance.enterprise else None,
        "enterprise_status_reason": instance.enterprise.status_reason
        if instance.enterprise else None,
        "started_at": _time(instance.started_at),
        "completed_at": _time(instance.completed_at),
        "open_tasks": [task_json(t) for t in runtime.open_tasks(instance)],
        "history": [history_json(h) for h in runtime.history(instance)],
    }


# -- endpoints -------------------------------------------------------------------------------

@bp.route("/openapi.json")
def openapi():
    return openapi_document()


@bp.route("/auth/token", methods=["POST"])
@limit_login_attempts
def token():
    body = json_object()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ValidationFailed("请提供用户名和密码", fields={
            k: [REQUIRED] for k in ("username", "password") if not isinstance(body.get(k), str)})
    user = accounts.authenticate(username, password)
    return {"token": accounts.issue_token(user, current_app.secret_key),
            "expires_in": current_app.config["TOKEN_MAX_AGE"]}


@bp.route("/tasks")
@token_required
def list_tasks():
    assignee = request.args.get("assignee")
    if assignee not in (None, "", "me"):
        raise ValidationFailed("参数取值无效", fields={"assignee": [ONLY_ME]})
    enterprise = request.args.get("enterprise")
    page = inbox.list_tasks(
        g.api_user, group=request.args.get("group") or None, mine=assignee == "me",
        process=request.args.get("process") or None, overdue=_bool_arg("overdue"),
        enterprise=_int_arg("enterprise", None) if enterprise else None,
        page=_int_arg("page", 1), per_page=_int_arg("per_page", 20, maximum=200))
    return {"items": [task_json(t) for t in page.items], "total": page.total,
            "page": page.page, "per_page": page.per_page}


@bp.route("/tasks/<int:task_id>")
@token_required
def get_task(task_id):
    return task_json(inbox.get_task(g.api_user, task_id), with_form=True)


@bp.route("/tasks/<int:task_id>/claim", methods=["POST"])
@token_required
def claim(task_id):
    task = inbox.claim_task(g.api_user, task_id)
    commit()
    return task_json(task)


@bp.route("/tasks/<int:task_id>/unclaim", methods=["POST"])
@token_required
def unclaim(task_id):
    task = inbox.unclaim_task(g.api_user, task_id)
    commit()
    return task_json(task)


@bp.route("/tasks/<int:task_id>/assign", methods=["POST"])
@token_required
def assign(task_id):
    body = json_object()
    task = inbox.assign_task(g.api_user, task_id, str(body.get("assignee", "")))
    commit()
    return task_json(task)


@bp.route("/tasks/<int:task_id>/delegate", methods=["POST"])
@token_required
def delegate(task_id):
    body = json_object()
    task = inbox.delegate_task(g.api_user, task_id, str(body.get("delegate", "")))
    commit()
    return task_json(task)


@bp.route("/tasks/<int:task_id>/return", methods=["POST"])
@token_required
def give_back(task_id):
    body = json_object(optional=True)
    task = inbox.return_task(g.api_user, task_id, str(body.get("note", "")))
    commit()
    return task_json(task)


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@token_required
def complete(task_id):
    data = _data(json_object())
    task = inbox.get_task(g.api_user, task_id)
    values = load_task_values(task, forms().get(task.form),
                              lambda f: load_json(f, data, translate=_)) if task.form else {}
    inbox.complete(g.api_user, task_id, values)
    commit()
    return {"task": task_json(task), "instance": instance_json(task.instance)}


@bp.route("/processes")
@token_required
def processes():
    return {"items": [{
        "key": key,
        "name": versions[0].name,
        "latest_version": versions[0].version,
        "can_start": cases.may_start(g.api_user, versions[0]),
        "versions": [{"version": v.version, "content_hash": v.content_hash,
                      "deployed_by": v.deployed_by, "deployed_at": _time(v.deployed_at),
                      "reason": v.reason} for v in versions],
    } for key, versions in deploy.list_processes()]}


@bp.route("/processes/<key>/instances", methods=["POST"])
@token_required
def start(key):
    data = _data(json_object())
    instance = cases.start_case(g.api_user, key, data, partial(load_json, translate=_))
    commit()
    return instance_json(instance), 201


@bp.route("/instances/<int:instance_id>")
@token_required
def instance(instance_id):
    return instance_json(inbox.get_instance(g.api_user, instance_id))


# The virtual clock: registered only in demo and test modes (see web/__init__.py), so in
# production these routes do not exist at all.
clock_bp = Blueprint("api_clock", __name__, url_prefix="/api/v1")


@clock_bp.route("/clock", methods=["GET"])
@token_required
def get_clock():
    return {"now": _time(clock.now()), "offset_seconds": int(clock.offset().total_seconds())}


@clock_bp.route("/clock/advance", methods=["POST"])
@token_required
def advance_clock():
    if not g.api_user.group_ids & CLOCK_GROUPS:
        raise Forbidden("只有信息化或品牌办公室管理员可以调整虚拟时钟")
    duration = json_object().get("duration")
    try:
        now = clock.advance(str(duration))
    except ValueError:
        raise ValidationFailed("时长格式无效，应为 ISO 8601，如 P3D",
                               fields={"duration": [BAD_DURATION]}) from None
    commit()
    fired = fire_due_timers(transaction)
    return {"now": _time(now), "fired": fired}
