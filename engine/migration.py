"""Moving running cases of a process from one version to another, all in one step.

A case can move when no task it has already done (completed or started) was changed
or removed in the new version, and no task it is waiting on was removed (the rule of
SpiffWorkflow's ``diff_workflow``, plus the open tasks a removal would strand). One
refinement: a completed task whose only changes are its name, department, documentation
or properties (a due period) does not block, since none of these can alter what already
happened; a changed path after it (``outputs``) still does. Every candidate is also
migrated in memory and reloaded against the new version before it counts as movable, so
the dry run and the real move apply the same test.

Moving keeps what did not change: open tasks keep their ids, inbox rows, claims and
creation time; waiting timers whose definition is unchanged keep their due time. A
changed open task has its inbox row rewritten (name, department, form, due date from
its creation time); a changed timer restarts from the moment of the move.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC
from uuid import UUID
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, filter_tasks, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import clock, deploy, runtime, versions
from engine.db import session
from engine.errors import N_, BadInput, ValidationFailed
from engine.models import HistoryEntry, Instance, ProcessMigration
from engine.serialization import load_spec, serializer, workflow_from_state, workflow_to_state
from engine.taskprops import task_properties

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DONE = TaskState.COMPLETED | TaskState.STARTED
# Attributes of a completed task that describe how it was to be done, not what followed.
PAST_ONLY = frozenset({"bpmn_name", "lane", "documentation", "extensions", "description"})
OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED
KEPT = TaskState.READY | TaskState.WAITING

# Why a case stays, and what moving changes; %-formatted after translation.
MESSAGES = {
    "done_changed": N_("已办理的环节“%(name)s”（%(element)s）在新版本中有改动"),
    "done_removed": N_("已办理的环节“%(name)s”（%(element)s）在新版本中已删除"),
    "open_removed": N_("正在进行的环节“%(name)s”（%(element)s）在新版本中已删除"),
    "structure_changed": N_("环节“%(name)s”（%(element)s）前后的连接在新版本中有改动，"
                            "而案件已经过这里"),
    "subprocess_removed": N_("正在进行的子流程 %(element)s 在新版本中已删除"),
    "needs_steps": N_("迁移后有自动环节（%(element)s）需要执行，请待案件推进后再迁移"),
    "trial_failed": N_("试迁移失败：%(detail)s"),
    "unreadable": N_("无法读取案件状态：%(detail)s"),
    "task_updated": N_("待办“%(name)s”将按新版本更新：%(what)s"),
    "department_changed": N_("部门 %(before)s → %(after)s，已签收的办理人将被释放"),
    "due_changed": N_("期限 %(before)s → %(after)s"),
    "form_changed": N_("表单 %(before)s → %(after)s"),
    "name_changed": N_("名称 %(before)s → %(after)s"),
    "timer_restarts": N_("定时器“%(name)s”的定义已修改，将从迁移时重新计时"),
}
REASON_REQUIRED = N_("请说明迁移原因")


def describe(item, translate=None):
    """The sentence for a reason or note ``{"code", "params"}``, translated if asked."""
    template = MESSAGES.get(item["code"], item["code"])
    if translate is not None:
        template = translate(template)
    params = dict(item.get("params") or {})
    for key, value in params.items():
        if isinstance(value, dict) and "code" in value:
            params[key] = describe(value, translate)
        elif isinstance(value, list):
            params[key] = "；".join(describe(v, translate) if isinstance(v, dict) else str(v)
                                   for v in value)
    return template % params


@dataclass
class Assessment:
    """One running case judged against the new version."""

    instance: Instance
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    workflow: object = None     # migrated in memory, when movable

    @property
    def movable(self):
        return not self.reasons

    def to_dict(self, translate=None):
        def said(items):
            return [dict(item, message=describe(item, translate)) for item in items]

        return {
            "instance_id": self.instance.id,
            "title": self.instance.title,
            "enterprise_id": self.instance.enterprise_id,
            "started_at": _time(self.instance.started_at),
            "open_tasks": [t.name for t in runtime.open_tasks(self.instance)],
            "movable": self.movable,
            "reasons": said(self.reasons),
            "notes": said(self.notes),
        }


def _time(value):
    return value.isoformat() + "Z" if value is not None else None


def _item(code, **params):
    return {"code": code, "params": params}


def _versions(key, from_version, to_version):
    old, new = deploy.get_version(key, from_version), deploy.get_version(key, to_version)
    if old.id == new.id:
        raise BadInput("请选择两个不同的版本", process=key)
    return old, new


def assess(key, from_version, to_version):
    """(old, new, [Assessment]) for every running case of ``key`` on ``from_version``."""
    old, new = _versions(key, from_version, to_version)
    new_spec, new_subs = load_spec(new.id, new.spec)
    cases = session().scalars(select(Instance).where(
        Instance.version_id == old.id, Instance.status == "running")
        .order_by(Instance.id)).all()
    return old, new, [_assess(case, new_spec, new_subs) for case in cases]


def dry_run(key, from_version, to_version, translate=None):
    """Which running cases can move and which cannot, and why; changes nothing."""
    old, new, found = assess(key, from_version, to_version)
    return _report(key, old, new, found, translate)


def migrate(key, from_version, to_version, migrated_by, actor=None, reason=None,
            translate=None):
    """Move every movable running case to ``to_version`` in the caller's transaction.

    Each moved case gets a ``migrated`` history entry and re-synced inbox and timer
    rows; a case that lost a race with a running step makes the whole move fail with
    409 (nothing moves). Returns the report of ``dry_run`` with ``moved`` filled in.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("迁移须说明原因", fields={"reason": [REASON_REQUIRED]})
    old, new, found = assess(key, from_version, to_version)
    now = clock.now()

    moved = []
    for item in found:
        if not item.movable:
            continue
        instance = item.instance
        _rewrite_rows(instance, item.workflow)
        instance.version_id = new.id
        instance.version = new
        runtime.resync(instance, item.workflow)
        session().add(HistoryEntry(
            instance_id=instance.id, at=now, actor_id=getattr(actor, "id", None),
            kind="migrated", detail={"from_version": old.version, "to": "v%d" % new.version,
                                     "to_version": new.version, "reason": reason,
                                     "notes": [describe(n) for n in item.notes]}))
        moved.append(instance.id)

    kept = {str(item.instance.id): [describe(r) for r in item.reasons]
            for item in found if not item.movable}
    session().add(ProcessMigration(
        process_key=key, from_version=old.version, to_version=new.version, moved=moved,
        kept=kept, migrated_by=migrated_by, migrated_at=now, reason=reason))
    session().flush()
    logger.info("%s migrated %d case(s) of %s from v%s to v%s (%d kept)", migrated_by,
                len(moved), key, old.version, new.version, len(kept))
    report = _report(key, old, new, found, translate)
    report["moved"] = moved
    return report


def history_of(key):
    """The migrations of a process, newest first."""
    return session().scalars(select(ProcessMigration).where(
        ProcessMigration.process_key == key).order_by(ProcessMigration.id.desc())).all()


def _report(key, old, new, found, translate):
    return {
        "process_key": key,
        "from_version": old.version,
        "to_version": new.version,
        "movable": [a.to_dict(translate) for a in found if a.movable],
        "blocked": [a.to_dict(translate) for a in found if not a.movable],
    }


# -- judging one case ------------------------------------------------------------------------

def _assess(instance, new_spec, new_subs):
    item = Assessment(instance)
    try:
        workflow = runtime.restore(instance)
    except Exception as exc:  # noqa: BLE001 - a case we cannot read must simply stay
        logger.warning("instance %s cannot be restored for migration: %s", instance.id, exc)
        item.reasons.append(_item("unreadable", detail=str(exc)[:200]))
        return item

    # diff_workflow's steps, keeping each SpecDiff for the attributes that changed.
    spec_diff = SpecDiff(serializer.registry, workflow.spec, new_spec)
    top = WorkflowDiff(workflow, spec_diff)
    diffs, sub_diffs = [(top, spec_diff)], {}
    for sub_id, sub in workflow.subprocesses.items():
        if sub.spec.name not in new_subs:
            item.reasons.append(_item("subprocess_removed", element=sub.spec.name))
            continue
        sub_spec_diff = SpecDiff(serializer.registry, sub.spec, new_subs[sub.spec.name])
        sub_diffs[sub_id] = WorkflowDiff(sub, sub_spec_diff)
        diffs.append((sub_diffs[sub_id], sub_spec_diff))
    for diff, specs in diffs:
        item.reasons.extend(_blockers(diff, specs))
    if item.reasons:
        return item

    # A waiting timer restarts only when its own definition changed.
    retimed = {spec.name for _d, specs in diffs for spec, keys in specs.changed.items()
               if "event_definition" in keys or "typename" in keys}
    try:
        kept = _open_task_memory(workflow, retimed)
        migrate_workflow(top, workflow, new_spec)
        for sub_id, sub_diff in sub_diffs.items():
            sub = workflow.subprocesses[sub_id]
            migrate_workflow(sub_diff, sub, new_subs[sub.spec.name])
        _restore_memory(workflow, kept)
        # What would be stored must load again against the new version.
        workflow_from_state(workflow_to_state(workflow), new_spec, new_subs)
    except Exception as exc:  # noqa: BLE001 - spiff raises many kinds; the case stays
        logger.info("trial migration of instance %s failed: %s", instance.id, exc)
        item.reasons.append(_item("trial_failed", detail=str(exc)[:200]))
        return item

    engine_ready = [t for wf in _workflows(workflow)
                    for t in wf.get_tasks(state=TaskState.READY, manual=False)]
    if engine_ready:
        item.reasons.append(_item("needs_steps", element=_element_id(engine_ready[0].task_spec)))
        return item

    item.workflow = workflow
    item.notes = _notes(instance, workflow, kept)
    return item


def _blockers(diff, spec_diff):
    reasons, seen = [], set()
    for task in filter_tasks(diff.removed, state=OPEN):
        _add_reason(reasons, seen, "open_removed", task)
    reported = {element for _code, element in seen}
    for task in filter_tasks(diff.changed + diff.removed, state=DONE):
        helper = not getattr(task.task_spec, "bpmn_id", None)
        if helper and _element_id(task.task_spec) in reported:
            continue    # spiff's split/join around an open task: its own reason says it
        if task in diff.removed:
            code = "structure_changed" if helper else "done_removed"
        elif task.state == TaskState.STARTED or _alters_the_past(task.task_spec, spec_diff):
            code = "structure_changed" if helper else "done_changed"
        else:
            continue
        _add_reason(reasons, seen, code, task)
    return reasons


def _alters_the_past(spec, spec_diff):
    """Whether a change to a completed task's spec matters for a case that passed it.

    Its name, department, documentation and properties do not; nor does a new order of
    the same outgoing flows (it already chose). Anything else, a new path after it above
    all, does.
    """
    keys = set(spec_diff.changed.get(spec, ())) - PAST_ONLY
    if not keys:
        return False
    new_spec = spec_diff.alignment.get(spec)
    if new_spec is None:
        return True
    before = serializer.registry.convert(spec)
    after = serializer.registry.convert(new_spec)
    return any(not versions.order_only(key, before.get(key), after.get(key)) for key in keys)


def _add_reason(reasons, seen, code, task):
    element = _element_id(task.task_spec)
    if (code, element) in seen:
        return
    seen.add((code, element))
    owner = task.task_spec._wf_spec.task_specs.get(element) or task.task_spec
    name = getattr(owner, "bpmn_name", None) or element
    reasons.append(dict(_item(code, name=name, element=element), element_id=element))


def _element_id(spec):
    """The BPMN id of a task spec (spiff's helper specs are named ``<id>.Xyz``)."""
    return getattr(spec, "bpmn_id", None) or str(spec.name).split(".")[0]


def _workflows(workflow):
    return [workflow, *workflow.subprocesses.values()]


def _open_task_memory(workflow, retimed):
    """Internal data (a timer's due time) of every open task whose event did not change.

    ``migrate_workflow`` resets ready and waiting tasks, which would restart every
    waiting timer from now; the others get their memory back afterwards.
    """
    kept = {}
    for wf in _workflows(workflow):
        for task in wf.get_tasks(state=KEPT):
            if task.task_spec.name not in retimed:
                kept[task.id] = (task.task_spec.name, dict(task.internal_data))
    return kept


def _restore_memory(workflow, kept):
    for wf in _workflows(workflow):
        for task_id, (spec_name, internal) in kept.items():
            task = wf.tasks.get(task_id)
            if task is not None and task.task_spec.name == spec_name and task.has_state(KEPT):
                task.internal_data = dict(internal)


def _find_task(workflow, task_uuid):
    try:
        task_id = UUID(task_uuid)
    except ValueError:
        return None
    for wf in _workflows(workflow):
        task = wf.tasks.get(task_id)
        if task is not None:
            return task
    return None


def _row_update(row, task):
    """{column: (before, after)} that moving changes on an open inbox row."""
    props = task_properties(task.task_spec)
    wanted = {
        "name": task.task_spec.bpmn_name or task.task_spec.name,
        "group_id": (task.task_spec.lane or "").strip(),
        "form": props.form,
        "due_at": props.due_from(row.created_at),
        "follow_up_at": props.follow_up_from(row.created_at),
    }
    return {k: (getattr(row, k), v) for k, v in wanted.items() if getattr(row, k) != v}


def _notes(instance, workflow, kept):
    notes = []
    for row in runtime.open_tasks(instance):
        task = _find_task(workflow, row.task_uuid)
        if task is None or task.state != TaskState.READY:
            continue
        update = _row_update(row, task)
        what = []
        if "group_id" in update:
            what.append(_item("department_changed", before=update["group_id"][0],
                              after=update["group_id"][1]))
        if "due_at" in update:
            what.append(_item("due_changed", before=_day(update["due_at"][0]),
                              after=_day(update["due_at"][1])))
        if "form" in update:
            what.append(_item("form_changed", before=update["form"][0],
                              after=update["form"][1]))
        if "name" in update:
            what.append(_item("name_changed", before=update["name"][0],
                              after=update["name"][1]))
        if what:
            notes.append(dict(_item("task_updated", name=row.name, what=what),
                              element_id=row.spec_name))
    for wf in _workflows(workflow):
        for task in wf.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, TimerEventDefinition) and task.id not in kept:
                element = _element_id(task.task_spec)
                name = task.task_spec.bpmn_name or element
                notes.append(dict(_item("timer_restarts", name=name), element_id=element))
    return notes


def _day(value):
    """A stored UTC time as the office reads it (Asia/Shanghai)."""
    if value is None:
        return "-"
    return value.replace(tzinfo=UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _rewrite_rows(instance, workflow):
    """Bring open inbox rows whose task changed in the new version up to date."""
    for row in runtime.open_tasks(instance):
        task = _find_task(workflow, row.task_uuid)
        if task is None or task.state != TaskState.READY:
            continue    # runtime.resync cancels rows whose task went away
        update = _row_update(row, task)
        for column, (_before, after) in update.items():
            setattr(row, column, after)
        if "group_id" in update:
            # The task now belongs to another department: its claim does not carry over.
            row.assignee_id = None
            row.delegated_by_id = None
