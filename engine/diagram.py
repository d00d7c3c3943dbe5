"""A case's diagram as its case page draws it: which elements are done, open, waiting."""

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import runtime, versions
from engine.db import session
from engine.models import Timer


def element_states(workflow):
    """BPMN ids of completed, active (ready or started) and waiting elements.

    An element passed before and open again (a loop) counts as active.
    """
    completed, active, waiting = set(), set(), set()
    for wf in [workflow, *workflow.subprocesses.values()]:
        for task in wf.get_tasks():
            element = task.task_spec.bpmn_id
            if not element:
                continue
            if task.state == TaskState.COMPLETED:
                completed.add(element)
            elif task.state in (TaskState.READY, TaskState.STARTED):
                active.add(element)
            elif task.state == TaskState.WAITING:
                waiting.add(element)
    return {"completed": sorted(completed - active - waiting), "active": sorted(active),
            "waiting": sorted(waiting - active)}


def instance_diagram(instance):
    """The case's version drawn for bpmn-js, with its element states and timer due times."""
    states = element_states(runtime.restore(instance))
    timers = session().scalars(select(Timer).where(Timer.instance_id == instance.id)
                               .order_by(Timer.due_at)).all()
    return {
        "instance_id": instance.id,
        "process_key": instance.process_key,
        "version": instance.version.version,
        "xml": versions.diagram_xml(instance.version),
        **states,
        "timers": [{"element_id": t.spec_name, "due_at": t.due_at.isoformat() + "Z"}
                   for t in timers],
    }
