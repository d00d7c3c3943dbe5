"""The JSON API for revising processes: versions, drafts, checks, diffs, migration,
simulation, forms, and a case's diagram.

Everything here belongs to the brand office (group ``office``), except a case's
diagram, which whoever may see the case may see. Callers authenticate with a bearer
token like the rest of ``/api/v1``, or with the browser session of the office's own
pages (the modeler), in which case a change also needs the page's CSRF token.
"""

import logging
from functools import wraps

from flask import Blueprint, current_app, g, request
from flask_babel import gettext as _
from flask_login import current_user

from engine import (
    accounts,
    deploy,
    diagram,
    drafts,
    formedit,
    inbox,
    migration,
    services,
    simulation,
    versions,
)
from engine.errors import N_, BadInput, Forbidden, NotAuthenticated, ValidationFailed
from engine.serialization import load_spec
from web.blueprints.api import json_object
from web.extensions import csrf
from web.views_common import commit, forms

logger = logging.getLogger(__name__)

bp = Blueprint("api_processes", __name__, url_prefix="/api/v1")

OFFICE = "office"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
XML_TYPES = frozenset({"application/xml", "text/xml", "application/bpmn+xml"})
REQUIRED = N_("必填")
MUST_BE_OBJECT = N_("必须是对象")
MUST_BE_LIST = N_("必须是列表")
MUST_BE_INTEGER = N_("应为整数")


def _user():
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return accounts.user_from_token(header[7:].strip(), current_app.secret_key,
                                        current_app.config["TOKEN_MAX_AGE"])
    if current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            # The session authenticates the office's own pages: they send the CSRF token.
            csrf.protect()
        return current_user._get_current_object()
    raise NotAuthenticated("缺少 Authorization: Bearer 令牌")


def signed_in(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.api_user = _user()
        return view(*args, **kwargs)
    return wrapper


def office_only(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.api_user = _user()
        if OFFICE not in g.api_user.group_ids:
            raise Forbidden("只有品牌管理办公室可以修改流程规则")
        return view(*args, **kwargs)
    return wrapper


def _time(value):
    return value.isoformat() + "Z" if value is not None else None


def version_json(version, created=None, warnings=None):
    body = {
        "process_key": version.process_key,
        "version": version.version,
        "name": version.name,
        "content_hash": version.content_hash,
        "deployed_by": version.deployed_by,
        "deployed_at": _time(version.deployed_at),
        "reason": version.reason,
        "files": sorted(version.files),
    }
    if created is not None:
        body["created"] = created
    if warnings is not None:
        body["warnings"] = [p.to_dict() for p in warnings]
    return body


def _problems(problems):
    errors = [p for p in problems if p.severity == "error"]
    return {"ok": not errors, "errors": len(errors), "warnings": len(problems) - len(errors),
            "problems": [p.to_dict() for p in problems]}


# -- uploads -----------------------------------------------------------------------------------

def _uploaded_files(key):
    """{name: bytes} from an XML body, a multipart form or a JSON ``files`` object."""
    mimetype = request.mimetype
    if mimetype in XML_TYPES:
        # An empty body is checked like any file: the report says the XML is empty (line 1).
        return {f"{key}.bpmn": request.get_data(cache=False)}
    if mimetype == "multipart/form-data":
        files = {}
        for upload in request.files.values():
            name = (upload.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
            files[name or "upload"] = upload.read()
        if not files:
            raise BadInput("没有上传文件：请以 file 字段上传 .bpmn 文件")
        return files
    if mimetype == "application/json":
        given = json_object().get("files")
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise ValidationFailed("files 必须是对象（文件名 → XML）",
                                   fields={"files": [MUST_BE_OBJECT]})
        return {name: text.encode("utf-8") for name, text in given.items()}
    raise BadInput("请以 application/xml、multipart/form-data 或 JSON 上传流程图")


def _reason():
    if request.mimetype == "multipart/form-data":
        reason = request.form.get("reason")
    elif request.mimetype == "application/json":
        reason = json_object().get("reason")
    else:
        reason = None
    reason = reason or request.args.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("部署新版本须说明原因（reason）", fields={"reason": [REQUIRED]})
    return reason.strip()


@bp.route("/processes/<key>/versions", methods=["POST"])
@office_only
def upload_version(key):
    """201 with the new version, 200 when the content equals the latest, 422 with problems."""
    files = _uploaded_files(key)
    reason = _reason()
    version, created, warnings = versions.deploy_files(
        key, files, forms(), g.api_user.username, reason, services.script_names())
    commit()
    return version_json(version, created, warnings), 201 if created else 200


@bp.route("/processes/<key>/check", methods=["POST"])
@office_only
def check_upload(key):
    """The executability check of uploaded files, without deploying them."""
    problems = versions.check(key, _uploaded_files(key), forms(), services.script_names())
    return _problems(problems)


@bp.route("/processes/<key>/versions/<int:number>")
@office_only
def get_version(key, number):
    version = deploy.get_version(key, number)
    body = version_json(version)
    body["contents"] = version.files
    return body


@bp.route("/processes/<key>/versions/<int:number>/diagram")
@office_only
def version_diagram(key, number):
    version = deploy.get_version(key, number)
    return {"process_key": key, "version": number, "xml": versions.diagram_xml(version)}


@bp.route("/processes/<key>/versions/<int:a>/diff/<int:b>")
@office_only
def version_diff(key, a, b):
    body = versions.diff_versions(key, a, b)
    for group in ("added", "removed", "changed"):
        for element in body[group]:
            for change in element["changes"]:
                change["label"] = _(change["label"])
    return body


# -- migration ---------------------------------------------------------------------------------

@bp.route("/processes/<key>/versions/<int:a>/migration/<int:b>")
@office_only
def migration_dry_run(key, a, b):
    """Which running cases on version a can move to b, and why the others cannot."""
    return migration.dry_run(key, a, b, translate=_)


@bp.route("/processes/<key>/versions/<int:a>/migration/<int:b>", methods=["POST"])
@office_only
def migration_apply(key, a, b):
    """Move every movable case from a to b in one transaction."""
    reason = json_object().get("reason")
    report = migration.migrate(key, a, b, g.api_user.username, g.api_user,
                               reason if isinstance(reason, str) else None, translate=_)
    commit()
    return report


# -- drafts ------------------------------------------------------------------------------------

def draft_json(draft, problems=None):
    body = drafts.summary(draft)
    if problems is not None:
        body["check"] = _problems(problems)
    return body


def _lock_version(body):
    value = body.get("lock_version")
    if value is not None and not isinstance(value, int):
        raise ValidationFailed("lock_version 应为整数", fields={"lock_version": [MUST_BE_INTEGER]})
    return value


def _check(draft):
    return drafts.check_draft(draft, forms(), services.script_names())


@bp.route("/processes/<key>/drafts")
@office_only
def list_drafts(key):
    return {"items": [draft_json(d) for d in drafts.open_drafts(key)]}


@bp.route("/processes/<key>/drafts", methods=["POST"])
@office_only
def create_draft(key):
    """A new draft from ``files``, or from ``from_version`` (default: the latest)."""
    body = json_object(optional=True)
    from_version = body.get("from_version")
    if from_version is not None and not isinstance(from_version, int):
        raise ValidationFailed("from_version 应为整数",
                               fields={"from_version": [MUST_BE_INTEGER]})
    base, files = drafts.starting_files(key, from_version)
    if body.get("files") is not None:
        files = body["files"]
    draft = drafts.create_draft(key, files, g.api_user.username, base)
    problems = _check(draft)
    commit()
    return draft_json(draft, problems), 201


@bp.route("/drafts/<int:draft_id>")
@office_only
def get_draft(draft_id):
    return draft_json(drafts.get_draft(draft_id))


@bp.route("/drafts/<int:draft_id>", methods=["PUT"])
@office_only
def save_draft(draft_id):
    """Save the draft's files and answer with the check of what was saved."""
    body = json_object()
    draft = drafts.save_draft(drafts.get_draft(draft_id), body.get("files"),
                              g.api_user.username, _lock_version(body))
    problems = _check(draft)
    commit()
    return draft_json(draft, problems)


@bp.route("/drafts/<int:draft_id>", methods=["DELETE"])
@office_only
def delete_draft(draft_id):
    drafts.delete_draft(drafts.get_draft(draft_id))
    commit()
    return "", 204


@bp.route("/drafts/<int:draft_id>/check", methods=["POST"])
@office_only
def check_draft(draft_id):
    return _problems(_check(drafts.get_draft(draft_id)))


@bp.route("/drafts/<int:draft_id>/deploy", methods=["POST"])
@office_only
def deploy_draft(draft_id):
    body = json_object()
    reason = body.get("reason")
    version, created, warnings = drafts.deploy_draft(
        drafts.get_draft(draft_id), forms(), g.api_user.username,
        reason if isinstance(reason, str) else None, services.script_names(),
        _lock_version(body))
    commit()
    return version_json(version, created, warnings), 201 if created else 200


# -- simulation --------------------------------------------------------------------------------

def _simulate(spec, subprocess_specs):
    body = json_object()
    data = body.get("data") or {}
    actions = body.get("actions") or []
    results = body.get("service_results") or {}
    if not isinstance(data, dict):
        raise ValidationFailed("data 必须是对象", fields={"data": [MUST_BE_OBJECT]})
    if not isinstance(actions, list):
        raise ValidationFailed("actions 必须是列表", fields={"actions": [MUST_BE_LIST]})
    if not isinstance(results, dict):
        raise ValidationFailed("service_results 必须是对象",
                               fields={"service_results": [MUST_BE_OBJECT]})
    # Nothing is written: the request ends without a commit, whatever happened.
    return simulation.simulate(spec, subprocess_specs, forms(), data, actions, results,
                               translate=_)


@bp.route("/drafts/<int:draft_id>/simulate", methods=["POST"])
@office_only
def simulate_draft(draft_id):
    draft = drafts.get_draft(draft_id)
    files = {name: text.encode("utf-8") for name, text in draft.files.items()}
    spec, subs = simulation.spec_from_files(draft.process_key, files, forms())
    return _simulate(spec, subs)


@bp.route("/processes/<key>/versions/<int:number>/simulate", methods=["POST"])
@office_only
def simulate_version(key, number):
    version = deploy.get_version(key, number)
    spec, subs = load_spec(version.id, version.spec)
    return _simulate(spec, subs)


# -- forms -------------------------------------------------------------------------------------

@bp.route("/forms")
@office_only
def list_forms():
    registry = forms()
    return {"items": [{"name": name, "title": _(registry.get(name).title),
                       "fields": registry.field_names(name)} for name in registry.names()]}


@bp.route("/forms/<name>")
@office_only
def get_form(name):
    return {"name": name, "text": formedit.form_text(forms(), name),
            "revisions": [{"saved_by": r.saved_by, "saved_at": _time(r.saved_at),
                           "reason": r.reason} for r in formedit.revisions(name)]}


@bp.route("/forms/<name>", methods=["PUT"])
@office_only
def save_form(name):
    """Check and save a form; 422 when it does not parse or breaks a version in use."""
    body = json_object()
    text = body.get("text")
    if not isinstance(text, str):
        raise ValidationFailed("text 必须是表单定义的 JSON 文本", fields={"text": [REQUIRED]})
    existed = forms().exists(name)
    form = formedit.save_form(forms(), name, text, g.api_user.username, body.get("reason"),
                              services.script_names())
    commit()
    return {"name": form.name, "title": form.title, "fields": form.field_names}, (
        200 if existed else 201)


# -- a case's diagram --------------------------------------------------------------------------

@bp.route("/instances/<int:instance_id>/diagram")
@signed_in
def instance_diagram(instance_id):
    """The case's diagram with completed, active and waiting elements, for bpmn-js."""
    return diagram.instance_diagram(inbox.get_instance(g.api_user, instance_id))
