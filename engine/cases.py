"""Starting a case: who may start which process, with which start form."""

from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent

from engine import deploy, runtime, services
from engine.db import session
from engine.errors import N_, Forbidden, ValidationFailed
from engine.inbox import ENTERPRISE_GROUP
from engine.models import Enterprise
from engine.serialization import load_spec
from engine.taskprops import task_properties


def start_event(version):
    """The plain start event of a version's process (the one a person starts)."""
    spec, _subs = load_spec(version.id, version.spec)
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, StartEvent) and isinstance(task_spec.event_definition,
                                                             NoneEventDefinition):
            return task_spec
    return None


def start_form(version):
    event = start_event(version)
    name = task_properties(event).form if event is not None else None
    return runtime.forms().get(name) if name else None


def may_start(user, version):
    event = start_event(version)
    if event is None or not services.may_start(version.process_key, user):
        return False
    lane = (event.lane or "").strip()
    if not lane:
        return user.enterprise_id is None
    if lane == ENTERPRISE_GROUP:
        return user.enterprise_id is not None
    return user.enterprise_id is None and lane in user.group_ids


def start_case(user, process_key, data, parse):
    """Start a case of ``process_key`` as ``user``; ``parse(form, data)`` validates the data.

    The web page passes the HTML loader, the API the JSON loader, so both give the same
    field errors for the same form.
    """
    version = deploy.get_version(process_key)
    if not may_start(user, version):
        raise Forbidden("您所在的部门不能发起此流程", process=process_key)

    form = start_form(version)
    if form is not None:
        values = parse(form, data)
    elif data:
        refused = N_("不接受数据")
        raise ValidationFailed("此流程不接受发起数据", fields={"data": [refused]})
    else:
        values = {}

    enterprise = session().get(Enterprise, user.enterprise_id) if user.enterprise_id else None
    services.check_start(process_key, user, enterprise, values)
    title = values.get("enterprise_name") or (enterprise.name if enterprise else None)
    return runtime.start_instance(process_key, user, values, enterprise_id=user.enterprise_id,
                                  title=f"{version.name}：{title}" if title else None)
