"""Running instances: start, complete a task, fire due timers.

Each public function is one step. It loads the instance row (with its lock
version), restores the workflow against the cached spec of its version, runs
the step with the sandboxed script engine, runs the domain effects the diagram
asks for, writes the state back only if nobody else did meanwhile, and brings
the human-task and timer projections and the history up to date. It only
flushes: the caller commits the whole step once, or rolls it back.
"""

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select
from sqlalchemy.orm.exc import StaleDataError

from engine import clock, deploy, sandbox, services
from engine.db import session
from engine.errors import BrandError, Conflict, EngineFailure, NotFound
from engine.models import HistoryEntry, HumanTask, Instance, Timer
from engine.serialization import load_spec, workflow_from_state, workflow_to_state
from engine.taskprops import task_properties

logger = logging.getLogger(__name__)


@dataclass
class Step:
    """What the domain functions called from a diagram may know about the running step."""

    instance: Instance
    actor: object | None
    effects: list = field(default_factory=list)

    def record(self, kind, **detail):
        """Note a domain effect; it lands in the case history with the step."""
        self.effects.append({"effect": kind, **detail})


current_step: ContextVar[Step | None] = ContextVar("current_step", default=None)

_settings = {"time_limit": 1.0, "forms": None}


def configure(forms, script_time_limit=1.0):
    """Called once by the host with the form registry and the script time bound."""
    _settings["forms"] = forms
    _settings["time_limit"] = script_time_limit


def forms():
    return _settings["forms"]


def _script_engine():
    return sandbox.make_script_engine(services.script_functions(), services.service_operations(),
                                      time_limit=_settings["time_limit"])


# -- loading and saving ----------------------------------------------------------------------

def get_instance(instance_id):
    instance = session().get(Instance, instance_id)
    if instance is None:
        raise NotFound("案件不存在", instance_id=instance_id)
    return instance


def _restore(instance):
    spec, subprocess_specs = load_spec(instance.version_id, instance.version.spec)
    workflow = workflow_from_state(instance.state, spec, subprocess_specs)
    workflow.script_engine = _script_engine()
    return workflow


def restore(instance):
    """The instance's workflow on its version's cached spec, with the sandboxed script engine.

    For readers outside a step (the diagram view, a migration); a step uses ``_run``.
    """
    return _restore(instance)


def resync(instance, workflow):
    """Write back a workflow changed outside a step (a migration) and re-sync its rows.

    The human-task and timer rows are brought up to date as after any step; the
    instance's lock version guards against a step running at the same time (409).
    """
    _save(instance, workflow)


def _run(instance, actor, action, completing=None):
    """Run ``action(workflow)`` as one step of ``instance`` and persist everything it did.

    When ``action`` returns False nothing happened (a timer that was no longer due):
    the step is dropped without writing anything, and ``_run`` returns None.
    ``completing`` names the user task this step completes; its row is closed by the caller.
    """
    step = Step(instance, actor)
    token = current_step.set(step)
    where = (instance.id, instance.process_key)
    try:
        workflow = _restore(instance)
        if action(workflow) is False:
            return None
        workflow.do_engine_steps()
    except BrandError:
        raise
    except WorkflowException as exc:
        raise _engine_failure(where, exc) from exc
    except StaleDataError:
        raise Conflict("另一个操作同时修改了此案件，请刷新后重试", instance_id=where[0]) from None
    finally:
        current_step.reset(token)

    _save(instance, workflow, completing)
    for effect in step.effects:
        _history(instance, actor, "effect", detail=effect)
    return workflow


def _engine_failure(where, exc):
    """The error a failed engine step shows: a domain refusal keeps its own status."""
    instance_id, process_key = where
    task = getattr(exc, "task", None)
    spec = getattr(exc, "task_spec", None) or (task.task_spec if task is not None else None)
    element = getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)
    line = getattr(exc, "line_number", None) or None
    logger.warning("instance %s (%s) failed at %s: %s", instance_id, process_key, element, exc)
    cause = exc.__cause__ or getattr(exc, "exception", None)
    if isinstance(cause, StaleDataError):
        return Conflict("另一个操作同时修改了此案件，请刷新后重试", instance_id=instance_id)
    message = str(cause) if isinstance(cause, BrandError) else str(exc)
    if isinstance(cause, BrandError):
        # A domain rule refused the step (for example a ledger check): keep its own status.
        cause.details.setdefault("element_id", element)
        return cause
    return EngineFailure(message, process=process_key, element_id=element, line=line)


def _save(instance, workflow, completing=None):
    instance_id = instance.id  # read now: after a failed flush the row cannot be loaded
    instance.state = workflow_to_state(workflow)
    instance.updated_at = clock.now()
    if workflow.completed:
        instance.status = "completed"
        instance.completed_at = instance.updated_at
    try:
        # The instance row first: its lock version tells at once whether another step won.
        session().flush()
        _sync_human_tasks(instance, workflow, completing)
        _sync_timers(instance, workflow)
        session().flush()
    except StaleDataError:
        raise Conflict("另一个操作同时修改了此案件，请刷新后重试",
                       instance_id=instance_id) from None


def _all_workflows(workflow):
    return [workflow, *workflow.subprocesses.values()]


def _ready_user_tasks(workflow):
    tasks = []
    for wf in _all_workflows(workflow):
        tasks.extend(wf.get_tasks(state=TaskState.READY, manual=True))
    return tasks


def _sync_human_tasks(instance, workflow, completing=None):
    """Make the open human-task rows match the workflow's ready user tasks."""
    ready = {str(t.id): t for t in _ready_user_tasks(workflow)}
    rows = session().scalars(select(HumanTask).where(
        HumanTask.instance_id == instance.id, HumanTask.state == "open")).all()
    known = {row.task_uuid for row in rows}

    for row in rows:
        if row.task_uuid not in ready and row.task_uuid != completing:
            # The workflow moved on without this task (a boundary timer, a cancelled branch).
            row.state = "cancelled"
            row.completed_at = clock.now()
            _history(instance, None, "cancelled", task_spec=row.spec_name, task_name=row.name)

    for uuid, task in ready.items():
        if uuid not in known:
            session().add(_human_task_row(instance, task))


def _human_task_row(instance, task):
    props = task_properties(task.task_spec)
    created = clock.now()
    lane = task.task_spec.lane or ""
    return HumanTask(
        instance_id=instance.id,
        process_key=instance.process_key,
        task_uuid=str(task.id),
        spec_name=task.task_spec.bpmn_id or task.task_spec.name,
        name=task.task_spec.bpmn_name or task.task_spec.name,
        group_id=lane.strip(),
        form=props.form,
        enterprise_id=instance.enterprise_id,
        state="open",
        created_at=created,
        due_at=props.due_from(created),
        follow_up_at=props.follow_up_from(created),
    )


def _sync_timers(instance, workflow):
    """Rewrite the instance's timer rows from the workflow's waiting timer events."""
    session().execute(delete(Timer).where(Timer.instance_id == instance.id))
    # Subprocesses register their waiting events with the top workflow's manager.
    info = session().info
    for task in workflow.event_manager.tasks.values():
        due = _timer_due(task)
        if due is not None:
            # The host wakes its scheduler for this time once the step commits.
            earliest = info.get("earliest_new_timer")
            info["earliest_new_timer"] = due if earliest is None else min(earliest, due)
            session().add(Timer(instance_id=instance.id, task_uuid=str(task.id),
                                spec_name=task.task_spec.bpmn_id or task.task_spec.name,
                                due_at=due))


def projection_problems(instance):
    """How the instance's task and timer rows differ from its workflow's state ([] when they
    agree): the check that no step was half applied, for tests and for operators."""
    workflow = _restore(instance)
    problems = []
    ready = {str(t.id) for t in _ready_user_tasks(workflow)}
    rows = set(session().scalars(select(HumanTask.task_uuid).where(
        HumanTask.instance_id == instance.id, HumanTask.state == "open")).all())
    problems += [f"task {u} is ready in the workflow but not open in the inbox"
                 for u in sorted(ready - rows)]
    problems += [f"task {u} is open in the inbox but not ready in the workflow"
                 for u in sorted(rows - ready)]
    due = {str(t.id): _timer_due(t) for t in workflow.event_manager.tasks.values()}
    waiting = {uuid: when for uuid, when in due.items() if when is not None}
    timers = dict(session().execute(select(Timer.task_uuid, Timer.due_at).where(
        Timer.instance_id == instance.id)).all())
    if waiting != timers:
        problems.append(f"timer rows {timers} differ from the workflow's timers {waiting}")
    finished = workflow.is_completed()
    if finished != (instance.status != "running"):
        problems.append(f"instance status {instance.status!r} but workflow "
                        f"{'completed' if finished else 'running'}")
    return problems


def _timer_due(task):
    definition = getattr(task.task_spec, "event_definition", None)
    if not isinstance(definition, TimerEventDefinition):
        return None
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(definition, CycleTimerEventDefinition):
        value = value.get("next") if isinstance(value, dict) else None
        if value is None:
            return None
    when = TimerEventDefinition.parse_time_or_duration(value)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _history(instance, actor, kind, task_spec=None, task_name=None, detail=None):
    session().add(HistoryEntry(
        instance_id=instance.id, at=clock.now(), actor_id=getattr(actor, "id", None),
        kind=kind, task_spec=task_spec, task_name=task_name, detail=detail or {}))


# -- the steps ---------------------------------------------------------------------------------

def start_instance(process_key, actor, data=None, enterprise_id=None, title=None):
    """Start a case on the latest version of a process, with validated start data."""
    version = deploy.get_version(process_key)
    spec, subprocess_specs = load_spec(version.id, version.spec)
    now = clock.now()

    instance = Instance(
        version_id=version.id, version=version, process_key=process_key, status="running",
        title=title or version.name, enterprise_id=enterprise_id,
        started_by=getattr(actor, "id", None), started_at=now, updated_at=now, state={},
    )
    session().add(instance)
    session().flush()

    step = Step(instance, actor)
    token = current_step.set(step)
    try:
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=_script_engine())
        workflow.task_tree.data.update(data or {})
        workflow.do_engine_steps()
    except BrandError:
        raise
    except WorkflowException as exc:
        raise _engine_failure((instance.id, process_key), exc) from exc
    finally:
        current_step.reset(token)

    _history(instance, actor, "started", detail={"data": data or {}, "version": version.version})
    _save(instance, workflow)
    for effect in step.effects:
        _history(instance, actor, "effect", detail=effect)
    return instance


def complete_task(human_task, actor, values):
    """Complete an open user task with validated form values, as ``actor``."""
    instance = human_task.instance
    task_id = human_task.id
    if human_task.state != "open":
        raise Conflict("此任务已办结", task_id=task_id)

    def run_task(workflow):
        task = workflow.get_task_from_id(UUID(human_task.task_uuid))
        if task is None or task.state != TaskState.READY:
            raise Conflict("此任务已不在待办状态", task_id=task_id)
        task.data.update(values)
        task.run()

    _run(instance, actor, run_task, completing=human_task.task_uuid)

    human_task.state = "completed"
    human_task.completed_at = clock.now()
    human_task.completed_by = actor.id
    if human_task.assignee_id is None:
        human_task.assignee_id = actor.id
    _history(instance, actor, "completed", human_task.spec_name, human_task.name,
             detail={"data": values})
    try:
        session().flush()
    except StaleDataError:
        raise Conflict("此任务已被他人同时修改，请刷新后重试", task_id=task_id) from None


def due_timer_instances(now=None, limit=500):
    """Ids of instances with at least one timer due by ``now``, earliest first."""
    now = now or clock.now()
    rows = session().execute(
        select(Timer.instance_id, Timer.due_at).where(Timer.due_at <= now)
        .order_by(Timer.due_at).limit(limit)).all()
    seen = []
    for instance_id, _ in rows:
        if instance_id not in seen:
            seen.append(instance_id)
    return seen


def fire_timers(instance_id, now=None):
    """Fire the due timers of one instance; returns the names of the timers that fired.

    The instance row is locked first (on PostgreSQL), then its due timers are read: every
    step locks the instance before the timer rows, so a timer run and a completion cannot
    deadlock, and several schedulers never fire one timer twice. The lock skips a row that
    is locked already (``SKIP LOCKED``): another scheduler is firing it, or a user's step
    is being committed; this scheduler moves on to the next case and sees this one again
    in its next round. Only timers the workflow really had waiting and that fired are
    reported and recorded.
    """
    now = now or clock.now()
    query = select(Instance).where(Instance.id == instance_id)
    if session().get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=Instance, skip_locked=True)
    instance = session().scalars(query).first()
    if instance is None or instance.status != "running":
        return []
    due = session().scalars(select(Timer).where(
        Timer.instance_id == instance_id, Timer.due_at <= now)).all()
    if not due:
        return []

    fired = []

    def refresh(workflow):
        waiting = [t for t in workflow.event_manager.tasks.values()
                   if _timer_due(t) is not None]
        workflow.refresh_timers()
        fired.extend(sorted({t.task_spec.bpmn_id or t.task_spec.name for t in waiting
                             if t.state != TaskState.WAITING}))
        return bool(fired)

    if _run(instance, None, refresh) is None:
        return []
    _history(instance, None, "timer", task_spec=", ".join(fired),
             detail={"due": [t.due_at.isoformat() for t in due if t.spec_name in fired]})
    session().flush()
    return fired


def next_timer_due():
    """The earliest due time of any waiting timer, or None."""
    return session().scalar(select(Timer.due_at).order_by(Timer.due_at).limit(1))


def open_tasks(instance):
    return session().scalars(select(HumanTask).where(
        HumanTask.instance_id == instance.id, HumanTask.state == "open")
        .order_by(HumanTask.created_at)).all()


def history(instance):
    return session().scalars(select(HistoryEntry).where(
        HistoryEntry.instance_id == instance.id).order_by(HistoryEntry.id)).all()


def case_data(instance, task_uuid=None):
    """The case's current data, for the case summary and a form's read-only fields.

    With ``task_uuid``, the data that task carries: what its form shows and completes
    from. Otherwise the data of the latest step on the case's main line: the top
    workflow's last task, then the last task of each running subprocess, outermost
    first. A subprocess keeps its own task data until it ends, so the top workflow's
    last task alone would not show what was answered inside it (an investigation).
    """
    workflow = _restore(instance)
    data = dict(workflow.data)
    task = workflow.get_task_from_id(UUID(task_uuid)) if task_uuid else None
    if task is not None:
        data.update(task.data)
        return data

    data.update((workflow.last_task or workflow.task_tree).data)
    running = [sub for sub in workflow.subprocesses.values()
               if not sub.completed and sub.last_task is not None]
    for sub in sorted(running, key=lambda sub: sub.depth):
        data.update(sub.last_task.data)
    return data
