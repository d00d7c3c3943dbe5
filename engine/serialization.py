"""Workflow state without its spec, and specs stored once per deployed version.

SpiffWorkflow's serializer writes the whole diagram into every workflow's JSON.
Here the spec is converted once at deploy time, kept on the ``ProcessVersion``
row, restored once per process and cached by version id; an instance row holds
only its tasks and data.
"""

import logging
from threading import Lock
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

logger = logging.getLogger(__name__)


class _StateOnlyConverter(BpmnWorkflowConverter):
    """Leaves the specs out of ``to_dict`` and takes them as arguments in ``from_dict``."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, spec=None, subprocess_specs=None):
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dict(dct))
        self.subprocesses_from_dict(dict(dct["subprocesses"]), workflow)
        workflow.bpmn_events = self.registry.restore(dct.get("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = _StateOnlyConverter
_registry = BpmnWorkflowSerializer.configure(_config)
serializer = BpmnWorkflowSerializer(_registry)

_specs = {}
_specs_lock = Lock()


def spec_to_dict(spec, subprocess_specs):
    """The JSON form of a process spec and the specs it calls, stored on its version row."""
    return {
        "serializer_version": serializer.VERSION,
        "spec": _registry.convert(spec),
        "subprocess_specs": {name: _registry.convert(s) for name, s in subprocess_specs.items()},
    }


def load_spec(version_id, spec_dict):
    """The restored (spec, subprocess_specs) of a version, restored once per process."""
    cached = _specs.get(version_id)
    if cached is not None:
        return cached
    with _specs_lock:
        if version_id not in _specs:
            spec = _registry.restore(spec_dict["spec"])
            subs = {name: _registry.restore(s) for name, s in spec_dict["subprocess_specs"].items()}
            _specs[version_id] = (spec, subs)
            logger.debug("restored spec of version %s", version_id)
    return _specs[version_id]


def workflow_to_state(workflow):
    return {"serializer_version": serializer.VERSION, "workflow": _registry.convert(workflow)}


def workflow_from_state(state, spec, subprocess_specs):
    return _registry.restore(state["workflow"], spec=spec, subprocess_specs=subprocess_specs)
