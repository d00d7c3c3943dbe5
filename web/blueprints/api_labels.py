"""Labels in the JSON API: batches and their exports, trace events, signing keys, rules.

Verification itself is public and lives in ``web/blueprints/verify.py``.
"""

from flask import Blueprint, g
from flask_babel import gettext as _

from engine import labelkeys, labels, licensing, rules, trace
from engine.errors import Forbidden
from web.blueprints.api import _time, json_object, token_required
from web.blueprints.verify import trace_json
from web.label_exports import csv_response, pdf_response
from web.views_common import commit

bp = Blueprint("api_labels", __name__, url_prefix="/api/v1")


def batch_json(batch):
    return {
        "id": batch.id,
        "licence_id": batch.licence_id,
        "licence_number": batch.licence.number,
        "key_id": batch.key_id,
        "count": batch.count,
        "first_serial": labels.format_serial(batch.first_serial),
        "last_serial": labels.format_serial(batch.last_serial),
        "status": batch.status,
        "created_at": _time(batch.created_at),
        "cancelled_at": _time(batch.cancelled_at),
        "pdf_pages": labels.batch_page_count(batch),
        "codes_csv": f"/api/v1/label-batches/{batch.id}/codes.csv",
        "labels_pdf": f"/api/v1/label-batches/{batch.id}/labels.pdf",
    }


def key_json(key):
    return {"id": key.id, "algorithm": key.algorithm,
            "public_key_pem": labelkeys.public_key_pem(key),
            "created_at": _time(key.created_at), "retired_at": _time(key.retired_at),
            "retire_reason": key.retire_reason}


def _licence(licence_id):
    licence = licensing.get_licence(licence_id)
    if not licensing.licence_visible_to(g.api_user, licence):
        raise Forbidden("只能查看本企业的授权")
    return licence


def _batch(batch_id, manage=False):
    batch = labels.get_batch(batch_id)
    allowed = (labels.may_manage_labels(g.api_user, batch.licence) if manage
               else labels.may_view_batch(g.api_user, batch))
    if not allowed:
        raise Forbidden("只有持证企业或市场开发部可以查看此批次")
    return batch


# -- batches -----------------------------------------------------------------------------------

@bp.route("/licences/<int:licence_id>/label-batches", methods=["POST"])
@token_required
def issue_batch(licence_id):
    body = json_object()
    batch = labels.issue_label_batch(_licence(licence_id), body.get("count"), g.api_user)
    commit()
    return batch_json(batch), 201


@bp.route("/licences/<int:licence_id>/label-batches")
@token_required
def list_batches(licence_id):
    licence = _licence(licence_id)
    return {"items": [batch_json(b) for b in labels.list_batches(licence.id)]}


@bp.route("/label-batches/<int:batch_id>")
@token_required
def show_batch(batch_id):
    return batch_json(_batch(batch_id))


@bp.route("/label-batches/<int:batch_id>/cancel", methods=["POST"])
@token_required
def cancel_batch(batch_id):
    body = json_object(optional=True)
    batch = labels.cancel_label_batch(_batch(batch_id, manage=True), g.api_user,
                                      str(body.get("reason") or ""))
    commit()
    return batch_json(batch)


@bp.route("/label-batches/<int:batch_id>/codes.csv")
@token_required
def batch_csv(batch_id):
    return csv_response(_batch(batch_id, manage=True))


@bp.route("/label-batches/<int:batch_id>/labels.pdf")
@token_required
def batch_pdf(batch_id):
    return pdf_response(_batch(batch_id, manage=True))


# -- trace events ------------------------------------------------------------------------------

@bp.route("/licences/<int:licence_id>/trace-events", methods=["POST"])
@token_required
def add_trace_event(licence_id):
    event = trace.record_trace_event(_licence(licence_id), g.api_user, json_object())
    commit()
    return trace_json(event), 201


@bp.route("/licences/<int:licence_id>/trace-events")
@token_required
def list_trace_events(licence_id):
    licence = _licence(licence_id)
    return {"items": [trace_json(e) for e in trace.list_trace_events(licence.id)]}


# -- signing keys ------------------------------------------------------------------------------

@bp.route("/label-keys")
@token_required
def list_keys():
    return {"items": [key_json(k) for k in labelkeys.list_signing_keys()]}


@bp.route("/label-keys/rotate", methods=["POST"])
@token_required
def rotate_key():
    key = labelkeys.rotate_signing_key(g.api_user)
    commit()
    return key_json(key), 201


@bp.route("/label-keys/<int:key_id>/retire", methods=["POST"])
@token_required
def retire_key(key_id):
    reason = str(json_object(optional=True).get("reason") or "")
    key = labelkeys.retire_signing_key(key_id, g.api_user, reason)
    commit()
    return key_json(key)


# -- rules -------------------------------------------------------------------------------------

def rule_json(rule):
    return dict(rule, description=_(rule["description"]) if rule["description"] else "",
                updated_at=_time(rule["updated_at"]))


@bp.route("/rules")
@token_required
def list_rules():
    if g.api_user.enterprise_id is not None:
        raise Forbidden("只有工作人员可以查看规则")
    return {"items": [rule_json(r) for r in rules.list_rules()]}


@bp.route("/rules/<key>", methods=["PUT"])
@token_required
def set_rule(key):
    body = json_object()
    rules.set_rule(key, body.get("value"), g.api_user, body.get("reason") or "")
    commit()
    return rule_json(next(r for r in rules.list_rules() if r["key"] == key))
