"""The brand office's pages for revising rules: processes and versions, the modeler,
diffs, migration, simulation and forms. The pages that edit call the JSON API in
``api_processes`` from the browser; the others are plain forms.
"""

import logging
import os
from functools import wraps

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from engine import deploy, drafts, formedit, migration, services, simulation, versions
from engine.db import session
from engine.errors import N_, DeployRefused, Forbidden, ValidationFailed
from engine.forms import FormDefinitionError
from engine.models import Group, Instance, ProcessVersion
from engine.serialization import load_spec
from web.blueprints import api_processes
from web.views_common import commit, forms, group_name

logger = logging.getLogger(__name__)

bp = Blueprint("admin_processes", __name__, url_prefix="/admin")

OFFICE = "office"

# Words the page scripts show, translated per request (web/static/js/*.js).
SCRIPT_STRINGS = {
    "saved": N_("草稿已保存"), "save_failed": N_("保存失败"), "checking": N_("正在检查…"),
    "no_problems": N_("检查通过：没有发现问题"), "errors": N_("错误"), "warnings": N_("警告"),
    "deployed": N_("已部署为第 %(version)s 版"),
    "unchanged": N_("内容与第 %(version)s 版相同，未创建新版本"),
    "deploy_refused": N_("无法部署：请先修正错误"), "reason_required": N_("请填写部署原因"),
    "unsaved": N_("有未保存的修改"), "load_failed": N_("加载失败"), "element": N_("元素"),
    "line": N_("行"), "process": N_("流程"), "name": N_("名称"), "id": N_("ID"),
    "lane": N_("部门（泳道）"), "no_lane": N_("（无泳道）"), "form": N_("表单"),
    "no_form": N_("（未选择）"), "due": N_("办理期限"), "follow_up": N_("提醒时间"),
    "due_hint": N_("如 P5D（5 天）、PT4H（4 小时）、5WD（5 个工作日）"),
    "bad_period": N_("格式无效：应为 P5D、PT4H 或 5WD"), "timer": N_("定时器"),
    "timer_kind": N_("类型"), "timeDate": N_("到期时间（timeDate）"),
    "timeDuration": N_("时长（timeDuration）"), "timeCycle": N_("循环（timeCycle）"),
    "timer_expr": N_("表达式（Python）"),
    "timer_hint": N_("字面值须加引号，如 \"P15D\"；工作日期限写 deadline_in_working_days(10)"),
    "unquoted": N_("字面值必须加引号"), "condition": N_("条件（Python 表达式）"),
    "condition_hint": N_("如 total_score >= 70；变量须来自表单、脚本或决策表"),
    "default_flow": N_("默认分支"), "make_default": N_("设为网关的默认分支"),
    "decision": N_("决策表（calledDecisionId）"), "no_decision": N_("（未选择）"),
    "script": N_("脚本"), "operator": N_("服务操作"), "result_variable": N_("结果变量"),
    "nothing_selected": N_("未选择元素：显示流程属性"), "edit_form": N_("编辑表单"),
    "decisions": N_("决策表"), "diagram": N_("流程图"), "xml": N_("XML 源码"),
    "apply_xml": N_("应用 XML"), "xml_applied": N_("已载入 XML"),
    "new_decision": N_("新建决策表"), "decision_id": N_("决策 ID"), "simulate": N_("模拟"),
    "path": N_("经过的环节"), "open_tasks": N_("当前待办"), "timers": N_("等待中的定时器"),
    "complete": N_("办结"), "advance": N_("推进时间"), "restart": N_("重新开始"),
    "data": N_("数据"), "due_at": N_("期限"), "overdue": N_("已超期"),
    "services": N_("模拟的业务操作（未执行）"), "finished": N_("流程已结束"),
    "error": N_("出错"), "start": N_("发起"), "sim_now": N_("模拟时间"),
    "completed": N_("已完成"), "active": N_("进行中"), "waiting": N_("等待中"),
    "changed": N_("有改动"), "added": N_("新增"), "cancelled": N_("已取消"),
    "start_data": N_("发起数据（JSON）"), "bad_json": N_("不是有效的 JSON"),
    "interrupting": N_("中断任务（cancelActivity）"),
}


def office_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if OFFICE not in current_user.group_ids:
            raise Forbidden("只有品牌管理办公室可以修改流程规则")
        return view(*args, **kwargs)
    return wrapper


def script_strings():
    return {key: _(text) for key, text in SCRIPT_STRINGS.items()}


@bp.before_app_request
def reload_forms_if_changed():
    """Forms saved by another worker: its atomic rename changed the directory's mtime."""
    registry = current_app.extensions.get("brand_forms")
    if registry is None:
        return
    try:
        stamp = os.stat(registry.directory).st_mtime_ns
    except OSError:
        return
    seen = current_app.extensions.setdefault("brand_forms_stamp", stamp)
    if stamp == seen:
        return
    current_app.extensions["brand_forms_stamp"] = stamp
    try:
        registry.reload()
    except FormDefinitionError as exc:
        logger.warning("forms changed on disk but do not load; keeping the old ones: %s", exc)


def _running_counts():
    rows = session().execute(select(Instance.version_id, func.count(Instance.id)).where(
        Instance.status == "running").group_by(Instance.version_id)).all()
    return dict(rows)


@bp.route("/processes")
@office_required
def processes():
    running = _running_counts()
    open_drafts = {}
    for draft in drafts.open_drafts():
        open_drafts.setdefault(draft.process_key, []).append(draft)
    listed = [{"key": key, "versions": found, "drafts": open_drafts.pop(key, []),
               "migrations": migration.history_of(key)[:5]}
              for key, found in deploy.list_processes()]
    # Drafts of processes never deployed (a new process being drawn).
    for key, found in sorted(open_drafts.items()):
        listed.append({"key": key, "versions": [], "drafts": found, "migrations": []})
    registry = forms()
    return render_template("admin/processes.html", processes=listed, running=running,
                           forms=[registry.get(n) for n in registry.names()])


@bp.route("/processes/new", methods=["POST"])
@office_required
def new_process():
    key = (request.form.get("key") or "").strip()
    name = (request.form.get("name") or "").strip() or key
    if deploy.latest_version(key) is not None:
        flash(_("流程 %(key)s 已存在，请从列表中打开", key=key))
        return redirect(url_for(".processes"))
    try:
        draft = drafts.create_draft(key, drafts.new_process_files(key, name),
                                    current_user.username)
    except ValidationFailed as exc:
        flash(_(exc.message))
        return redirect(url_for(".processes"))
    commit()
    return redirect(url_for(".modeler", key=key, draft=draft.id))


@bp.route("/processes/<key>/modeler")
@office_required
def modeler(key):
    """The modeler: a draft (``?draft=``) or a version (``?version=``, default latest)."""
    draft_id = request.args.get("draft", type=int)
    draft = drafts.get_draft(draft_id) if draft_id else None
    if draft is not None and draft.process_key != key:
        abort(404)
    if draft is not None and draft.deployed_version is not None:
        flash(_("此草稿已部署，不能再修改"))
        return redirect(url_for(".modeler", key=key, version=draft.deployed_version))
    version = request.args.get("version", type=int)
    if draft is None:
        base, files = drafts.starting_files(key, version)
        if base is None:
            abort(404)
    else:
        base, files = draft.base_version, dict(draft.files)
    name, text = versions.bpmn_file(files)
    files[name] = versions.drawn(text)
    config = {
        "key": key,
        "draft": ({k: v for k, v in drafts.summary(draft).items() if k != "files"}
                  if draft is not None else None),
        "files": files,
        "base_version": base,
        "urls": {
            "api": request.script_root + api_processes.bp.url_prefix,
            "simulate": url_for(".simulate", key=key),
            "modeler": url_for(".modeler", key=key),
            "form": url_for(".form_page", name="__name__"),
        },
        "groups": _groups(),
        "forms": _form_choices(),
        "operations": sorted(services.service_operations()),
        "strings": script_strings(),
    }
    return render_template("admin/modeler.html", key=key, config=config, draft=draft,
                           base=base)


@bp.route("/processes/<key>/diff")
@office_required
def diff(key):
    latest = deploy.get_version(key)
    b = request.args.get("b", type=int) or latest.version
    a = request.args.get("a", type=int) or max(1, b - 1)
    result = versions.diff_versions(key, a, b)
    xml = versions.diagram_xml(deploy.get_version(key, b))
    markers = {"added": [e["element_id"] for e in result["added"]],
               "changed": [e["element_id"] for e in result["changed"]]}
    return render_template("admin/diff.html", key=key, diff=result, xml=xml, markers=markers,
                           numbers=_numbers(key))


@bp.route("/processes/<key>/migrate", methods=["GET", "POST"])
@office_required
def migrate(key):
    latest = deploy.get_version(key)
    to_version = request.values.get("to", type=int) or latest.version
    from_version = request.values.get("from", type=int) or max(1, to_version - 1)
    result = None
    if request.method == "POST":
        try:
            result = migration.migrate(key, from_version, to_version, current_user.username,
                                       current_user, request.form.get("reason"), translate=_)
        except ValidationFailed as exc:
            flash(_(exc.message))
        else:
            commit()
            flash(_("已将 %(n)s 个案件迁移到第 %(v)s 版", n=len(result["moved"]),
                    v=to_version))
            return redirect(url_for(".migrate", key=key, **{"from": from_version,
                                                            "to": to_version}))
    report = migration.dry_run(key, from_version, to_version, translate=_)
    return render_template("admin/migrate.html", key=key, report=report,
                           numbers=_numbers(key), running=_running_counts(),
                           history=migration.history_of(key))


@bp.route("/processes/<key>/simulate")
@office_required
def simulate(key):
    """The sandbox of a draft (``?draft=``) or a deployed version (``?version=``)."""
    draft_id = request.args.get("draft", type=int)
    if draft_id:
        draft = drafts.get_draft(draft_id)
        try:
            spec, _subs = simulation.spec_from_files(key, drafts.as_bytes(draft.files), forms())
        except DeployRefused:
            flash(_("流程图有错误，请先修正再模拟"))
            return redirect(url_for(".modeler", key=key, draft=draft.id))
        xml = versions.drawn(versions.bpmn_file(draft.files)[1])
        source = {"draft": draft.id}
        api = url_for("api_processes.simulate_draft", draft_id=draft.id)
    else:
        version = deploy.get_version(key, request.args.get("version", type=int))
        spec, _subs = load_spec(version.id, version.spec)
        xml = versions.diagram_xml(version)
        source = {"version": version.version}
        api = url_for("api_processes.simulate_version", key=key, number=version.version)

    name = simulation.start_form_name(spec)
    start_data = simulation.example_values(forms().get(name)) if name and forms().exists(
        name) else {}
    config = {"api": api, "xml": xml, "start_data": start_data, "strings": script_strings(),
              **source}
    return render_template("admin/simulate.html", key=key, config=config, source=source)


@bp.route("/forms")
@office_required
def new_form():
    """The editor of a form named in ``?name=`` (a new one when it does not exist yet)."""
    return redirect(url_for(".form_page", name=(request.args.get("name") or "").strip()))


@bp.route("/forms/<name>", methods=["GET", "POST"])
@office_required
def form_page(name):
    if not formedit.FORM_NAME.match(name):
        abort(404)
    registry = forms()
    exists = registry.exists(name)
    text = formedit.form_text(registry, name) if exists else _new_form_text(name)
    problems, errors = [], {}
    if request.method == "POST":
        text = request.form.get("text", "")
        try:
            formedit.save_form(registry, name, text, current_user.username,
                               request.form.get("reason"), services.script_names())
        except ValidationFailed as exc:
            errors = exc.fields
            flash(_(exc.message))
        except DeployRefused as exc:
            problems = exc.problems
            flash(_(exc.message))
        else:
            commit()
            flash(_("表单已保存：%(name)s", name=name))
            return redirect(url_for(".form_page", name=name))
    return render_template("admin/form.html", name=name, text=text, exists=exists,
                           revisions=formedit.revisions(name), problems=problems,
                           errors=errors)


def _new_form_text(name):
    return ('{\n  "name": "%s",\n  "title": "",\n  "fields": [\n'
            '    {"name": "comment", "type": "text", "label": "意见", "required": true}\n'
            '  ]\n}\n' % name)


def _numbers(key):
    """The version numbers of a process, newest first."""
    return list(session().scalars(select(ProcessVersion.version).where(
        ProcessVersion.process_key == key).order_by(ProcessVersion.version.desc())))


def _groups():
    rows = session().scalars(select(Group).order_by(Group.id)).all()
    return [{"id": row.id, "name": group_name(row.id)} for row in rows]


def _form_choices():
    registry = forms()
    return [{"name": n, "title": _(registry.get(n).title)} for n in registry.names()]
