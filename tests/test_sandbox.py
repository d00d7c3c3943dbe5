"""The script sandbox, driven the way the engine drives it: tiny BPMN processes run by
SpiffWorkflow with ``make_script_engine``. Failures are asserted as the host sees them,
a ``WorkflowTaskException`` out of ``do_engine_steps()`` carrying the original error."""

import time
import tracemalloc
from datetime import datetime
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.sandbox import (
    SAFE_BUILTINS,
    SandboxViolation,
    ScriptTimeout,
    UnknownService,
    make_script_engine,
)

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs" targetNamespace="http://example.org/sandbox-test">
  <bpmn:process id="proc" isExecutable="true">
"""
FOOTER = """  </bpmn:process>
</bpmn:definitions>
"""


def _chain(*nodes):
    """A process start -> nodes... -> end; each node is ``make(id, incoming, outgoing)``."""
    ids = ["start"] + [f"n{k}" for k in range(len(nodes))] + ["end"]
    flows = [f"f{k}" for k in range(len(ids) - 1)]
    parts = [f'<bpmn:startEvent id="start"><bpmn:outgoing>{flows[0]}</bpmn:outgoing>'
             "</bpmn:startEvent>"]
    for k, node in enumerate(nodes):
        parts.append(node(ids[k + 1], flows[k], flows[k + 1]))
    parts.append(f'<bpmn:endEvent id="end"><bpmn:incoming>{flows[-1]}</bpmn:incoming>'
                 "</bpmn:endEvent>")
    parts += [f'<bpmn:sequenceFlow id="{flow}" sourceRef="{ids[k]}" targetRef="{ids[k + 1]}"/>'
              for k, flow in enumerate(flows)]
    return HEADER + "\n".join(parts) + FOOTER


def _script_task(script):
    def make(node_id, incoming, outgoing):
        return (f'<bpmn:scriptTask id="{node_id}"><bpmn:incoming>{incoming}</bpmn:incoming>'
                f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>"
                f"<bpmn:script>{xml_escape(script)}</bpmn:script></bpmn:scriptTask>")
    return make


def _service_task(operator, params, result_variable="service_result"):
    rows = "".join(f'<spiffworkflow:parameter id="{name}" type="any" value={quoteattr(expr)}/>'
                   for name, expr in params.items())

    def make(node_id, incoming, outgoing):
        return (f'<bpmn:serviceTask id="{node_id}"><bpmn:extensionElements>'
                f'<spiffworkflow:serviceTaskOperator id="{operator}" '
                f'resultVariable="{result_variable}">'
                f"<spiffworkflow:parameters>{rows}</spiffworkflow:parameters>"
                "</spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"
                f"<bpmn:incoming>{incoming}</bpmn:incoming>"
                f"<bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>")
    return make


def _gateway_process(condition):
    """start -> gateway; condition true -> 'passed' script, default -> 'failed' script."""
    cond = xml_escape(condition)
    return HEADER + f"""
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="gw" default="f_no">
      <bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:scriptTask id="yes"><bpmn:incoming>f_yes</bpmn:incoming>
      <bpmn:outgoing>f_yes_end</bpmn:outgoing>
      <bpmn:script>route = "passed"</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="no"><bpmn:incoming>f_no</bpmn:incoming>
      <bpmn:outgoing>f_no_end</bpmn:outgoing>
      <bpmn:script>route = "failed"</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f_yes_end</bpmn:incoming>
      <bpmn:incoming>f_no_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="yes">
      <bpmn:conditionExpression>{cond}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="no"/>
    <bpmn:sequenceFlow id="f_yes_end" sourceRef="yes" targetRef="end"/>
    <bpmn:sequenceFlow id="f_no_end" sourceRef="no" targetRef="end"/>
""" + FOOTER


def _workflow(xml, data=None, functions=None, services=None, time_limit=1.0):
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_str(xml.encode("utf-8"), filename="sandbox_test.bpmn")
    engine = make_script_engine(functions or {}, services or {}, time_limit=time_limit)
    workflow = BpmnWorkflow(parser.get_spec("proc"), parser.get_subprocess_specs("proc"),
                            script_engine=engine)
    # The start task is READY before the first step; data given to it flows downstream.
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(data or {})
    return workflow


def _run(xml, **kwargs):
    workflow = _workflow(xml, **kwargs)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    return workflow.data


def _failure(xml, **kwargs):
    """Run ``xml`` expecting the engine to fail; return the WorkflowTaskException."""
    workflow = _workflow(xml, **kwargs)
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    return caught.value


def _violation(script, **kwargs):
    error = _failure(_chain(_script_task(script)), **kwargs)
    assert isinstance(error.exception, SandboxViolation), error
    assert error.__cause__ is error.exception
    assert str(error).startswith("SandboxViolation: ")
    return error


# -- what diagrams may do -----------------------------------------------------------------

def test_script_sets_task_data():
    data = _run(_chain(_script_task("total = price * quantity\n"
                                    "tags = [t.upper() for t in names if t]\n"
                                    "counts = {}\ncounts['a'] = 1\ncounts['a'] += 2")),
                data={"price": 3, "quantity": 4, "names": ["x", "", "y"]})
    assert data["total"] == 12
    assert data["tags"] == ["X", "Y"]
    assert data["counts"] == {"a": 3}


@pytest.mark.parametrize("score, route", [(75, "passed"), (60, "passed"), (59, "failed")])
def test_gateway_condition_routes(score, route):
    data = _run(_gateway_process("total_score >= 60"), data={"total_score": score})
    assert data["route"] == route


def test_named_function_callable_from_script_and_condition():
    calls = []

    def working_days(n):
        calls.append(n)
        return n + 2

    functions = {"working_days": working_days}
    data = _run(_chain(_script_task("due = working_days(5)")), functions=functions)
    assert data["due"] == 7
    data = _run(_gateway_process("working_days(limit) > 10"), data={"limit": 9},
                functions=functions)
    assert data["route"] == "passed"
    assert calls == [5, 9]


def test_service_task_calls_named_service_with_evaluated_params():
    received = {}

    def open_application(task_data, amount=None, label=None):
        received.update(task_data=task_data, amount=amount, label=label)
        return {"status": "applying", "amount": amount}

    xml = _chain(_service_task("open_application",
                               {"amount": "price * 2", "label": "'first ' + name"},
                               result_variable="opened"))
    data = _run(xml, data={"price": 21, "name": "Acme"},
                services={"open_application": open_application})
    assert received["amount"] == 42
    assert received["label"] == "first Acme"
    assert received["task_data"]["name"] == "Acme"
    assert data["opened"] == {"status": "applying", "amount": 42}


def test_unknown_service_is_named():
    error = _failure(_chain(_service_task("no_such_service", {})),
                     services={"open_application": lambda task_data: None})
    assert isinstance(error.exception, UnknownService)
    assert "no_such_service" in str(error)
    assert "open_application" in str(error)


def test_service_errors_keep_their_cause():
    def fail(task_data):
        raise ValueError("deposit must be positive")

    error = _failure(_chain(_service_task("fail", {})), services={"fail": fail})
    assert isinstance(error.exception, ValueError)
    assert "Service 'fail' failed: ValueError: deposit must be positive" in str(error)


def test_results_survive_spiff_serialization():
    xml = _chain(_script_task("when = datetime(2024, 5, 1, 9, 30) + timedelta(days=1)\n"
                              "pair = (1, 'a')\nlabel = f'{when.day:02d}'"))
    workflow = _workflow(xml)
    workflow.do_engine_steps()
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    restored = serializer.deserialize_json(serializer.serialize_json(workflow))
    assert restored.data["when"] == datetime(2024, 5, 2, 9, 30)
    assert restored.data["label"] == "02"


def test_safe_builtins_cover_the_promised_names():
    promised = {"len", "min", "max", "sum", "abs", "int", "str", "float", "round", "bool",
                "list", "dict", "set", "tuple", "sorted", "any", "all", "range", "enumerate",
                "zip", "isinstance", "True", "False", "None"}
    assert promised <= SAFE_BUILTINS
    assert not {"open", "eval", "exec", "compile", "globals", "type", "__import__"} & SAFE_BUILTINS


# -- what the sandbox refuses -------------------------------------------------------------

def test_import_is_refused():
    error = _violation("import os\nos.system('true')")
    assert "import statements are not allowed" in str(error)
    assert error.line_number == 1


def test_dunder_import_is_refused():
    error = _violation("os = __import__('os')")
    assert '"__import__" is an invalid variable name' in str(error)


def test_subclasses_walk_is_refused():
    error = _violation("x = ().__class__.__base__.__subclasses__()")
    assert '"__class__" is an invalid attribute name' in str(error)


def test_open_is_refused():
    error = _violation("x = 1\ntext = open('/etc/passwd').read()")
    assert "'open' is not available in scripts" in str(error)
    assert error.line_number == 2
    assert error.error_line == "text = open('/etc/passwd').read()"


def test_getattr_of_private_attribute_is_refused():
    error = _violation("cls = getattr(x, '__class__')", data={"x": 1})
    assert "access to attribute '__class__' is not allowed" in str(error)


def test_str_format_template_is_refused():
    error = _violation("x = '{0.__class__}'.format(1)")
    assert "'format'" in str(error)


def test_endless_loop_times_out():
    workflow = _workflow(_chain(_script_task("while True:\n    pass")))
    started = time.monotonic()
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    elapsed = time.monotonic() - started
    assert isinstance(caught.value.exception, ScriptTimeout)
    assert str(caught.value).startswith("ScriptTimeout: script ran longer than its time limit")
    assert 0.9 < elapsed < 2.0


def test_timeout_cannot_be_swallowed_by_except():
    script = ("try:\n    while True:\n        x = 1\nexcept Exception:\n    pass\n"
              "while True:\n    pass")
    started = time.monotonic()
    error = _failure(_chain(_script_task(script)), time_limit=0.3)
    assert isinstance(error.exception, ScriptTimeout)
    assert time.monotonic() - started < 1.5


def test_condition_times_out():
    error = _failure(_gateway_process("len([a for a in range(1000) for b in range(1000) "
                                      "for c in range(1000)]) > 0"), time_limit=0.3)
    assert isinstance(error.exception, ScriptTimeout)
    assert "Error evaluating expression" in str(error)


def test_huge_repetition_refused_without_allocating():
    tracemalloc.start()
    try:
        error = _violation("x = 'a' * 10**10")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "'*' would build 10000000000 elements" in str(error)
    assert peak < 20_000_000


@pytest.mark.parametrize("script, fragment", [
    ("x = 9 ** 10**6", "'**' would build an integer"),
    ("x = [0] * 10**7", "'*' would build 10000000 elements"),
    ("x = 'ab'\nfor i in range(40):\n    x += x", "'+' would build"),
    ("x = ''.join(['a' * 1000] * 10**4)", "str.join() would build"),
    ("x = str(['a' * 1000] * 10**4)", "str() of this value"),
    ("x = 'a'.ljust(10**9)", "str.ljust() would build"),
    ("x = '%s' % (['a' * 1000] * 10**4,)", "'%' formatting would build"),
    ("x = list(range(10**8))", "range() would build"),
])
def test_other_memory_bombs_are_refused(script, fragment):
    assert fragment in str(_violation(script))


def test_violation_cannot_be_swallowed_by_except():
    error = _violation("try:\n    x = 'a' * 10**10\nexcept Exception:\n    x = 'fallback'")
    assert "'*' would build" in str(error)
    assert error.line_number == 2


def test_task_data_shadowing_a_function_is_named():
    error = _violation("y = 1", data={"working_days": 3},
                       functions={"working_days": lambda n: n})
    assert "task data key(s) 'working_days' shadow the script function" in str(error)


def test_condition_over_shadowed_function_is_named():
    error = _failure(_gateway_process("working_days > 1"), data={"working_days": 3},
                     functions={"working_days": lambda n: n})
    assert isinstance(error.exception, SandboxViolation)
    assert "'working_days'" in str(error)


def test_unstorable_result_is_named():
    error = _violation("seen = {1, 2}")
    assert "task data key 'seen' holding a set value" in str(error)


def test_host_objects_are_opaque():
    error = _violation("x = lookup.func_name", functions={"lookup": lambda: None})
    assert "of function objects is not allowed" in str(error)
