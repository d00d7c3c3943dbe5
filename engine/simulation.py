"""A sandbox run of a draft or version: sample data, any department, a virtual clock.

Staff start a case with sample data, complete open tasks as any department and move
the simulation's own clock forward; the answer is the path the case took, its open
tasks with due dates, its waiting timers and its data. Nothing is written: the
workflow lives only in memory, service tasks (the domain effects on enterprises and
the deposit ledger) are replaced by stubs that record the call, and the request's
session is never committed. The run is replayed from the start for every request,
so the client keeps the list of actions and no simulation state lives on the server.
"""

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import SpiffWorkflow.bpmn.specs.event_definitions.timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine import checks, clock, deploy, diagram, sandbox, services, versions
from engine.errors import BrandError, DeployRefused, ValidationFailed
from engine.forms import describe as describe_form
from engine.forms import load_json
from engine.taskprops import task_properties
from engine.workdays import add_working_days

logger = logging.getLogger(__name__)

MAX_ACTIONS = 200
MAX_TIMER_ROUNDS = 100

_simulated_now: ContextVar = ContextVar("simulated_now", default=None)


class _SimulatedDatetime(spiff_timer.datetime):
    """SpiffWorkflow's timer module asks ``datetime.now``: answer the simulation's clock.

    XXX: engine.clock already points that module's ``datetime`` at its own subclass;
    this one wraps it, and only differs while a simulation runs in this context, so
    real steps in other threads keep reading the real (or demo) clock.
    """

    @classmethod
    def now(cls, tz=None):
        moment = _simulated_now.get()
        if moment is None:
            return super().now(tz)
        aware = moment.replace(tzinfo=UTC)
        return aware.astimezone(tz) if tz is not None else moment


spiff_timer.datetime = _SimulatedDatetime


def _now():
    return _simulated_now.get() or clock.now()


def _sim_deadline_in_working_days(days):
    end, _exact = add_working_days(_now(), int(days))
    return end.isoformat() + "+00:00"


def _sim_deadline_in(duration):
    return (_now() + clock.parse_duration(duration)).isoformat() + "+00:00"


@dataclass
class Run:
    """What a simulation saw, in the order it happened."""

    now: object
    path: list = field(default_factory=list)
    services: list = field(default_factory=list)
    ready_since: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)
    error: dict | None = None


def _stub(run, name, results):
    def call(task_data=None, **params):
        run.services.append({"at": _iso(run.now), "operation": name,
                             "params": {k: _plain(v) for k, v in params.items()}})
        return results.get(name)
    return call


def _plain(value):
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _iso(moment):
    return moment.isoformat() + "Z" if moment is not None else None


def spec_from_files(key, files, forms):
    """(spec, subprocess specs) of a draft's files; refuses a draft with errors."""
    unit = versions.unit_files(key, files)
    problems = deploy.check_unit(unit, forms, services.script_names())
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DeployRefused("流程图有错误，请先修正再模拟", errors)
    try:
        parser = checks.parse_specs(unit)
    except checks.CheckFailed as exc:
        raise DeployRefused("流程图有错误，请先修正再模拟", exc.problems) from None
    return parser.get_spec(key), parser.get_subprocess_specs(key)


def start_form_name(spec):
    """The form of the process's plain start event, or None."""
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, StartEvent) and isinstance(task_spec.event_definition,
                                                             NoneEventDefinition):
            return task_properties(task_spec).form
    return None


def simulate(spec, subprocess_specs, forms, data=None, actions=(), service_results=None,
             start_at=None, translate=None):
    """Run the process in memory: start with ``data``, then apply ``actions`` in order.

    An action is ``{"complete": "<task id>", "data": {...}}`` (the first open task with
    that BPMN id, as any department) or ``{"advance": "P3D"}`` (the simulation's clock;
    every timer due on the way fires at its own time). Returns the run as JSON; a
    failure stops the run and is reported in ``error`` with the action's index.
    """
    if len(actions) > MAX_ACTIONS:
        raise ValidationFailed("模拟步骤太多", fields={"actions": ["≤ %d" % MAX_ACTIONS]})
    run = Run(now=start_at or clock.now())
    token = _simulated_now.set(run.now)
    workflow = None
    try:
        functions = services.script_functions()
        functions["deadline_in_working_days"] = _sim_deadline_in_working_days
        functions["deadline_in"] = _sim_deadline_in
        stubs = {name: _stub(run, name, service_results or {})
                 for name in services.service_operations()}
        engine = sandbox.make_script_engine(functions, stubs)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine)

        index = None
        try:
            start = _validated(forms, start_form_name(spec), data or {}, translate)
            workflow.task_tree.data.update(start)
            workflow.do_engine_steps()
            _record(run, workflow, "start")
            for index, action in enumerate(actions):
                _apply(run, workflow, forms, action, translate)
                _record(run, workflow, index)
        except (BrandError, WorkflowException) as exc:
            run.error = _error(exc, index)
            _record(run, workflow, index)
    finally:
        _simulated_now.reset(token)
    return _result(run, workflow, forms, translate)


def _validated(forms, form_name, data, translate):
    if not isinstance(data, dict):
        raise ValidationFailed("数据必须是对象", fields={"data": ["{}"]})
    if form_name is None or not forms.exists(form_name):
        return dict(data)
    return load_json(forms.get(form_name), data, translate=translate)


def _apply(run, workflow, forms, action, translate):
    if not isinstance(action, dict):
        raise ValidationFailed("模拟步骤无效", fields={"actions": ["{complete|advance}"]})
    if "advance" in action:
        try:
            delta = clock.parse_duration(str(action["advance"]))
        except ValueError:
            raise ValidationFailed("时长格式无效，应为 ISO 8601，如 P3D",
                                   fields={"advance": ["P3D"]}) from None
        _advance(run, workflow, run.now + delta)
        return
    element = action.get("complete")
    task = next((t for t in _ready_user_tasks(workflow)
                 if t.task_spec.bpmn_id == element), None)
    if task is None:
        raise ValidationFailed("模拟中没有这个待办", fields={"complete": [str(element)]})
    values = _validated(forms, task_properties(task.task_spec).form, action.get("data") or {},
                        translate)
    task.data.update(values)
    task.run()
    workflow.do_engine_steps()


def _advance(run, workflow, until):
    """Move the clock to ``until``, stopping at each timer due on the way."""
    for _ in range(MAX_TIMER_ROUNDS):
        due = [d for d in (_timer_due(t) for t in _waiting_timers(workflow)) if d is not None]
        upcoming = min((d for d in due if d <= until), default=None)
        if upcoming is None:
            break
        _set_now(run, max(upcoming + timedelta(microseconds=1), run.now))
        workflow.refresh_timers()
        workflow.do_engine_steps()
        _record(run, workflow, "timer")
    _set_now(run, until)
    workflow.refresh_timers()
    workflow.do_engine_steps()


def _set_now(run, moment):
    run.now = moment
    _simulated_now.set(moment)


def _workflows(workflow):
    return [workflow, *workflow.subprocesses.values()]


def _ready_user_tasks(workflow):
    return [t for wf in _workflows(workflow)
            for t in wf.get_tasks(state=TaskState.READY, manual=True)]


def _waiting_timers(workflow):
    return [t for t in workflow.event_manager.tasks.values()
            if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)]


def _timer_due(task):
    value = task._get_internal_data("event_value")
    if isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
        value = value.get("next") if isinstance(value, dict) else None
    if value is None:
        return None
    when = TimerEventDefinition.parse_time_or_duration(value)
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def _record(run, workflow, phase):
    """Append what finished since the last record to the path, oldest first."""
    if workflow is None:
        return
    finished = []
    for wf in _workflows(workflow):
        for task in wf.get_tasks(state=TaskState.COMPLETED | TaskState.CANCELLED):
            if task.id not in run.seen and task.task_spec.bpmn_id:
                finished.append(task)
    finished.sort(key=lambda t: t.last_state_change)
    for task in finished:
        run.seen.add(task.id)
        spec = task.task_spec
        run.path.append({
            "at": _iso(run.now), "phase": phase, "element_id": spec.bpmn_id,
            "name": spec.bpmn_name or spec.bpmn_id, "type": type(spec).__name__,
            "lane": spec.lane,
            "state": "cancelled" if task.state == TaskState.CANCELLED else "completed"})
    for task in _ready_user_tasks(workflow):
        run.ready_since.setdefault(task.id, run.now)


def _error(exc, index):
    if isinstance(exc, BrandError):
        body = exc.to_dict()
    else:
        task = getattr(exc, "task", None)
        spec = getattr(exc, "task_spec", None) or (task.task_spec if task is not None else None)
        body = {"code": "engine_error", "message": str(exc),
                "element_id": getattr(spec, "bpmn_id", None)}
    body["action_index"] = index
    logger.debug("simulation stopped at action %s: %s", index, body.get("message"))
    return body


def _result(run, workflow, forms, translate):
    open_tasks, timers, data = [], [], {}
    markers = {"completed": [], "active": [], "waiting": []}
    if workflow is not None:
        for task in _ready_user_tasks(workflow):
            open_tasks.append(_open_task(run, task, forms, translate))
        for task in _waiting_timers(workflow):
            due = _timer_due(task)
            timers.append({"element_id": task.task_spec.bpmn_id,
                           "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                           "due_at": _iso(due)})
        last = workflow.last_task or workflow.task_tree
        data = _json_safe(dict(workflow.data, **last.data))
        markers = diagram.element_states(workflow)
    return {
        "now": _iso(run.now),
        "completed": bool(workflow is not None and workflow.completed),
        "path": run.path,
        "open_tasks": open_tasks,
        "timers": sorted(timers, key=lambda t: t["due_at"] or ""),
        "services": run.services,
        "data": data,
        "markers": markers,
        "error": run.error,
    }


def _open_task(run, task, forms, translate):
    spec = task.task_spec
    props = task_properties(spec)
    created = run.ready_since.get(task.id, run.now)
    due = props.due_from(created)
    form = forms.get(props.form) if props.form and forms.exists(props.form) else None
    return {
        "element_id": spec.bpmn_id, "name": spec.bpmn_name or spec.bpmn_id,
        "lane": spec.lane, "form": props.form, "created_at": _iso(created),
        "due_at": _iso(due), "overdue": due is not None and due < run.now,
        "fields": describe_form(form, translate or (lambda m: m))["fields"] if form else [],
        "example": example_values(form) if form else {},
    }


def example_values(form):
    """Plausible JSON input for every editable field of a form, to start from."""
    values = {}
    for spec in form.editable_fields:
        values[spec.name] = _example(spec)
    return values


def _example(spec):
    if spec.type in ("choice", "multichoice"):
        choices = spec.choice_values()
        first = choices[0] if choices else ""
        return [first] if spec.type == "multichoice" else first
    low = spec.min if spec.min is not None else None
    examples = {
        "string": "示例", "text": "示例说明", "boolean": True,
        "date": clock.now().date().isoformat(),
        "integer": int(low) if low is not None else 1,
        "money": max(int(low or 0), min(100_000, int(spec.max or 100_000))),
        "decimal": format(low, "f") if low is not None else "1.00",
    }
    return examples.get(spec.type, "")


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return _plain(value)
