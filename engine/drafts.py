"""Drafts: revisions of a process that policy staff edit, check and deploy.

A draft is never live: nothing that runs cases reads this table. Saving a draft
checks it (the same executability check as a deploy) and keeps it even when it has
errors, so unfinished work is not lost; deploying refuses while errors remain.
"""

import logging
from datetime import datetime

from sqlalchemy import select

from engine import clock, deploy, versions
from engine.db import session
from engine.errors import N_, Conflict, NotFound, ValidationFailed
from engine.models import ProcessDraft
from engine.xmlsafe import MAX_BYTES

logger = logging.getLogger(__name__)

REASON_REQUIRED = N_("请说明修改原因")
BAD_KEY = N_("以字母开头，只能用字母、数字、下划线和连字符")
BAD_FILES = N_("应为对象（文件名 → 内容），含一个 .bpmn 文件")

NEW_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
                  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
                  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="{key}_definitions"
                  targetNamespace="http://yingjiang.gov.cn/brand/bpmn">
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="start" name="发起">
      <bpmn:outgoing>f_start</bpmn:outgoing>
    </bpmn:startEvent>
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="end"/>
    <bpmn:endEvent id="end" name="办结">
      <bpmn:incoming>f_start</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="{key}">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start">
        <dc:Bounds x="180" y="160" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end">
        <dc:Bounds x="400" y="160" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f_start_di" bpmnElement="f_start">
        <di:waypoint x="216" y="178"/>
        <di:waypoint x="400" y="178"/>
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def get_draft(draft_id):
    draft = session().get(ProcessDraft, draft_id)
    if draft is None:
        raise NotFound("草稿不存在", draft_id=draft_id)
    return draft


def open_drafts(process_key=None):
    """Drafts not deployed yet, newest first (of one process, or of all)."""
    query = select(ProcessDraft).where(ProcessDraft.deployed_version.is_(None))
    if process_key is not None:
        query = query.where(ProcessDraft.process_key == process_key)
    return session().scalars(query.order_by(ProcessDraft.updated_at.desc())).all()


def starting_files(process_key, version=None):
    """The files a new draft of ``process_key`` starts from: a version (drawn) or a template."""
    found = deploy.latest_version(process_key) if version is None else deploy.get_version(
        process_key, version)
    if found is None:
        return None, new_process_files(process_key, process_key)
    files = dict(found.files)
    name, _text = versions.bpmn_file(files)
    files[name] = versions.diagram_xml(found)
    return found.version, files


def new_process_files(key, name):
    text = NEW_PROCESS.replace("{key}", key).replace("{name}", _xml_attr(name))
    return {f"{key}.bpmn": text}


def _xml_attr(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


def create_draft(process_key, files, user_name, base_version=None):
    """Keep ``files`` as a new draft of ``process_key``; returns it (flushed)."""
    if not versions.PROCESS_KEY.match(process_key or ""):
        raise ValidationFailed("流程标识无效", fields={"process_key": [BAD_KEY]})
    now = clock.now()
    draft = ProcessDraft(process_key=process_key, base_version=base_version,
                         files=_checked_files(files), created_by=user_name, created_at=now,
                         updated_by=user_name, updated_at=now)
    session().add(draft)
    session().flush()
    logger.info("%s created draft %s of %s", user_name, draft.id, process_key)
    return draft


def save_draft(draft, files, user_name, lock_version=None):
    """Replace the draft's files; ``lock_version`` is what the editor loaded (409 if stale)."""
    _not_deployed(draft)
    if lock_version is not None and lock_version != draft.lock_version:
        raise Conflict("草稿已被他人修改，请重新打开后再编辑", draft_id=draft.id)
    draft.files = _checked_files(files)
    draft.updated_by = user_name
    draft.updated_at = clock.now()
    session().flush()
    return draft


def delete_draft(draft):
    _not_deployed(draft)
    session().delete(draft)
    session().flush()


def check_draft(draft, forms, script_names):
    """Every problem (errors and warnings) the executability check finds in the draft."""
    return versions.check(draft.process_key, as_bytes(draft.files), forms, script_names)


def deploy_draft(draft, forms, user_name, reason, script_names, lock_version=None):
    """Deploy the draft as the next version; returns (version, created, warnings)."""
    _not_deployed(draft)
    if lock_version is not None and lock_version != draft.lock_version:
        raise Conflict("草稿已被他人修改，请重新打开后再部署", draft_id=draft.id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("部署新版本须说明原因", fields={"reason": [REASON_REQUIRED]})
    version, created, warnings = versions.deploy_files(
        draft.process_key, as_bytes(draft.files), forms, user_name, reason, script_names)
    draft.deployed_version = version.version
    draft.updated_by = user_name
    draft.updated_at = clock.now()
    session().flush()
    return version, created, warnings


def _not_deployed(draft):
    if draft.deployed_version is not None:
        raise Conflict("此草稿已部署，不能再修改", draft_id=draft.id,
                       deployed_version=draft.deployed_version)


def _checked_files(files):
    if not isinstance(files, dict) or not files:
        raise ValidationFailed("草稿内容无效", fields={"files": [BAD_FILES]})
    total = 0
    for name, text in files.items():
        if not isinstance(name, str) or not versions.FILE_NAME.match(name) or not isinstance(
                text, str):
            raise ValidationFailed("草稿内容无效", fields={"files": [BAD_FILES]})
        total += len(text.encode("utf-8"))
    if total > MAX_BYTES:
        raise ValidationFailed("草稿太大", fields={"files": [N_("文件总大小超过上限")]})
    if sum(1 for name in files if name.endswith(".bpmn")) != 1:
        raise ValidationFailed("草稿内容无效", fields={"files": [BAD_FILES]})
    return dict(files)


def as_bytes(files):
    return {name: text.encode("utf-8") for name, text in files.items()}


def summary(draft):
    """The JSON form of a draft, with its files."""
    return {
        "id": draft.id,
        "process_key": draft.process_key,
        "base_version": draft.base_version,
        "files": draft.files,
        "created_by": draft.created_by,
        "created_at": _time(draft.created_at),
        "updated_by": draft.updated_by,
        "updated_at": _time(draft.updated_at),
        "deployed_version": draft.deployed_version,
        "lock_version": draft.lock_version,
    }


def _time(value: datetime | None):
    return value.isoformat() + "Z" if value is not None else None
