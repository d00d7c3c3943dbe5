"""The deploy (executability) check for BPMN and DMN files.

SpiffWorkflow 3.2.0 accepts many diagrams that fail later, at run time, or that silently
do something else than drawn (see /work/shared/ENGINE_NOTES.md). ``check_files`` finds
those problems before a diagram is accepted; ``parse_specs`` loads accepted files into
the spiff parser without ever letting it see unsafe XML.
"""

import ast
import logging
import re
from collections import defaultdict
from collections.abc import Callable

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from engine import sandbox
from engine.taskprops import period_is_valid
from engine.xmlsafe import (
    MESSAGES,
    CheckFailed,
    Problem,
    assigned_names,
    bpmn_local,
    bpmn_tag,
    clean_code,
    compiles_as_written,
    event_definitions,
    free_names,
    local_name,
    parse_documents,
    parse_expression,
    parse_specs,
    parse_xml,
    properties,
    schema_problems,
    shorten,
    spiff_refusal,
    spiff_tag,
    spiff_text,
)

__all__ = ["MESSAGES", "CheckFailed", "Problem", "check_files", "parse_specs", "parse_xml"]



logger = logging.getLogger(__name__)

# Short names: these two appear in nearly every lookup below.
_q = bpmn_tag
_s = spiff_tag

# A condition may use what the script sandbox offers, and nothing else.
SAFE_BUILTINS = sandbox.SAFE_BUILTINS

# Every flow node BPMN 2.0 allows inside a process.
FLOW_NODE_TAGS = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "exclusiveGateway", "inclusiveGateway", "parallelGateway", "complexGateway",
    "eventBasedGateway", "startEvent", "endEvent", "intermediateCatchEvent",
    "intermediateThrowEvent", "boundaryEvent", "callChoreography", "subChoreography",
    "choreographyTask"})
SUPPORTED_NODES = frozenset(
    etree.QName(tag).localname
    for tag in (*SpiffBpmnParser.PARSER_CLASSES, *SpiffBpmnParser.OVERRIDE_PARSER_CLASSES))
UNSUPPORTED_NODES = FLOW_NODE_TAGS - SUPPORTED_NODES

# The event definitions each event parser in SpiffWorkflow/bpmn/parser/event_parsers.py
# looks for; any other definition is dropped and the event runs as a plain one.
EVENT_DEFINITIONS = {
    "startEvent": {"message", "signal", "timer", "conditional"},
    "endEvent": {"message", "cancel", "error", "escalation", "terminate"},
    "intermediateCatchEvent": {"message", "signal", "timer", "conditional"},
    "intermediateThrowEvent": {"message", "signal", "escalation"},
    "boundaryEvent": {"cancel", "error", "escalation", "message", "signal", "timer",
                      "conditional"},
}
SUBPROCESS_TAGS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
# Elements that wait for a person, a message or the clock: a loop through one of these
# advances at human speed and never nears the engine's ~500-iteration limit.
WAITING_TAGS = frozenset({
    "userTask", "manualTask", "receiveTask", "intermediateCatchEvent", "eventBasedGateway"})
WAITING_BOUNDARY = frozenset({"timer", "message", "signal", "conditional"})

_DURATION_RE = re.compile(
    r"P(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?"
    r"(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:[.,]\d+)?S)?)?")
# Shapes that are plainly meant as ISO 8601 values, not Python names or arithmetic.
_ISO_LIKE_RE = re.compile(
    r"R\d*/\S+"
    r"|PT?(?:\d+(?:[.,]\d+)?[YMWDHS]T?)+"
    r"|\d{4}-?(?:W\d{2}-?\d|\d{2}-?\d{2})(?:T[\d:.,]+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE)
TIMER_EXAMPLES = {
    "timeDuration": "\"PT4H\"", "timeDate": "\"2026-01-01T09:00:00+08:00\"",
    "timeCycle": "\"R3/PT10M\""}


class _Context:
    """Everything the checks share: the documents, the callers' lookups, derived indexes."""

    def __init__(self, docs, known_groups, form_fields, script_names):
        self.docs = docs
        self.known_groups = {str(g).strip() for g in known_groups}
        self._form_fields = form_fields
        self._forms = {}
        self.script_names = set(script_names)
        self.processes = {}       # process id -> (doc, element)
        self.decisions = {}       # decision id -> (doc, element)
        for doc in docs:
            if doc.kind == "bpmn":
                for proc in doc.root.iter(_q("process")):
                    self.processes.setdefault(proc.get("id"), (doc, proc))
            else:
                for dec in doc.root:
                    if local_name(dec) == "decision":
                        self.decisions.setdefault(dec.get("id"), (doc, dec))
        self._names = None

    def executable(self):
        """(doc, process) for every process the spiff parser treats as executable."""
        for doc, proc in self.processes.values():
            if proc.get("isExecutable", "true") == "true":
                yield doc, proc

    def form(self, name):
        """form_fields(name), asked once per check run."""
        if name not in self._forms:
            self._forms[name] = self._form_fields(name)
        return self._forms[name]

    def known_names(self):
        """Every name a gateway condition may read (see condition_unknown_name)."""
        if self._names is None:
            self._names = self._collect_names()
        return self._names

    def _collect_names(self):
        names = set(SAFE_BUILTINS) | self.script_names
        for _doc, dec in self.decisions.values():
            for out in dec.iter():
                if local_name(out) == "output":
                    names.add((out.get("name") or "").split(".")[0])
        for doc in self.docs:
            if doc.kind == "bpmn":
                for el in doc.root.iter():
                    if isinstance(el.tag, str):
                        names.update(self._names_from(el))
        names.discard("")
        return names

    def _names_from(self, el):
        local = bpmn_local(el)
        if local in ("userTask", "startEvent", "manualTask"):
            form = (properties(el).get("form") or "").strip()
            if form:
                yield from self.form(form) or []
        elif local == "script" and el.text:
            yield from assigned_names(el.text)
        elif local == "dataObject":
            yield from (el.get("id") or "", el.get("name") or "")
        elif local in ("inputDataItem", "outputDataItem", "dataInput", "dataOutput"):
            yield el.get("name") or ""
        elif local in ("loopDataInputRef", "loopDataOutputRef"):
            yield (el.text or "").strip()
        elif el.tag in (_s("preScript"), _s("postScript")) and el.text:
            yield from assigned_names(el.text)
        elif el.tag in (_s("variableName"), _s("messageVariable")):
            yield (el.text or "").strip()
        elif el.tag == _s("serviceTaskOperator"):
            yield el.get("resultVariable") or ""


# ---- per-element checks -------------------------------------------------------------

def _valid_timer_literal(kind, value):
    if not isinstance(value, str):
        return False
    try:
        if kind == "timeDuration":
            return bool(_DURATION_RE.fullmatch(value.upper())) and bool(
                TimerEventDefinition.parse_iso_duration(value))
        if kind == "timeCycle":
            if not re.fullmatch(r"R\d*/.+", value):
                return False
            TimerEventDefinition.parse_iso_recurring_interval(value)
            return True
        if value.upper().startswith("P"):
            return False
        return TimerEventDefinition.parse_time_or_duration(value) is not None
    except Exception:  # noqa: BLE001 - spiff's own parser raising is exactly "invalid"
        return False


def _check_timer(doc, event, definition):
    # spiff prefers timeDate, then timeDuration, then timeCycle (event_parsers.py).
    for kind in ("timeDate", "timeDuration", "timeCycle"):
        node = definition.find(".//" + _q(kind))
        if node is not None:
            break
    else:
        return [doc.problem("timer_missing", event)]
    text = node.text or ""
    expr = text.strip()
    if not expr:
        return [doc.problem("timer_missing", event)]
    if _ISO_LIKE_RE.fullmatch(expr):
        return [doc.problem("unquoted_timer", event, expr=expr)]
    tree, reason = parse_expression(text)
    if tree is None:
        return [doc.problem("timer_syntax", event, expr=shorten(expr), detail=reason)]
    problems = []
    if isinstance(tree.body, ast.Constant):
        if not _valid_timer_literal(kind, tree.body.value):
            problems.append(doc.problem("timer_invalid_literal", event, kind=kind,
                                        expr=shorten(expr), example=TIMER_EXAMPLES[kind]))
    if not compiles_as_written(text, "eval"):
        problems.append(doc.problem("expression_whitespace", event, "warning",
                                    expr=shorten(expr)))
    return problems


def _check_event(doc, el, local):
    problems = []
    definitions = list(event_definitions(el))
    if local == "boundaryEvent" and not definitions:
        problems.append(doc.problem("unsupported_event", el, event=local, definition="(none)"))
    for kind, definition in definitions:
        if kind == "compensate":
            problems.append(doc.problem("unsupported_compensation", el,
                                        tag=etree.QName(definition).localname))
        elif kind not in EVENT_DEFINITIONS[local]:
            problems.append(doc.problem("unsupported_event", el, event=local,
                                        definition=etree.QName(definition).localname))
        elif kind == "timer":
            problems.extend(_check_timer(doc, el, definition))
    return problems


def _check_script(doc, el, text, where):
    if text is None or not text.strip():
        return [doc.problem("script_empty", el)] if where == "scriptTask" else []
    try:
        compile(clean_code(text), "<script>", "exec")
    except SyntaxError as exc:
        return [doc.problem("script_syntax", el, where=where, script_line=exc.lineno or 1,
                            detail=exc.msg)]
    except Exception as exc:  # noqa: BLE001 - e.g. nesting too deep for the compiler
        return [doc.problem("script_syntax", el, where=where, script_line=1,
                            detail=type(exc).__name__)]
    if not compiles_as_written(text, "exec"):
        return [doc.problem("expression_whitespace", el, "warning", expr=shorten(text))]
    return []


def _check_user_task(ctx, doc, el):
    problems = []
    props = properties(el)
    form = (props.get("form") or "").strip()
    if not form:
        problems.append(doc.problem("user_task_no_form", el))
    elif ctx.form(form) is None:
        problems.append(doc.problem("unknown_form", el, form=form))
    for prop in ("due", "follow_up"):
        if prop in props:
            # The same rule the runtime applies when it computes the date (taskprops).
            if not period_is_valid(props[prop] or ""):
                problems.append(doc.problem("invalid_due", el, prop=prop,
                                            value=(props[prop] or "").strip()))
    return problems


def _check_call(ctx, doc, proc, el, calls):
    target = (el.get("calledElement") or "").strip()
    if not target:
        return [doc.problem("call_missing_target", el)]
    if target == proc.get("id") or proc.get("id") in _reachable_calls(calls, target):
        return [doc.problem("recursive_call", el, process=target)]
    if target not in ctx.processes:
        # deploy builds the called specs with the caller, so they must come along.
        return [doc.problem("call_unknown_process", el, process=target)]
    if ctx.processes[target][1].get("isExecutable", "true") != "true":
        return [doc.problem("call_not_executable", el, process=target)]
    return []


def _check_element(ctx, doc, proc, el, calls):
    local = bpmn_local(el)
    problems = []
    if el.get("isForCompensation") == "true":
        problems.append(doc.problem("unsupported_compensation", el, tag=local))
    if local in UNSUPPORTED_NODES:
        problems.append(doc.problem("unsupported_element", el, tag=local))
    elif local in EVENT_DEFINITIONS:
        problems.extend(_check_event(doc, el, local))
    elif local == "userTask":
        problems.extend(_check_user_task(ctx, doc, el))
    elif local == "scriptTask":
        script = el.find(_q("script"))
        problems.extend(_check_script(doc, el, None if script is None else script.text,
                                      "scriptTask"))
    elif local == "businessRuleTask":
        decision = spiff_text(el, "calledDecisionId")
        if not (decision or "").strip():
            problems.append(doc.problem("decision_missing", el))
        elif decision not in ctx.decisions:
            problems.append(doc.problem("unknown_decision", el, decision=decision.strip()))
    elif local == "serviceTask":
        operator = el.find("%s/%s" % (_q("extensionElements"), _s("serviceTaskOperator")))
        if operator is None or not (operator.get("id") or "").strip():
            problems.append(doc.problem("service_operator_missing", el))
    elif local == "callActivity":
        problems.extend(_check_call(ctx, doc, proc, el, calls))
    if local in ("subProcess", "transaction"):
        starts = len(el.findall(_q("startEvent")))
        ends = len(el.findall(_q("endEvent")))
        if starts != 1 or ends == 0:
            problems.append(doc.problem("subprocess_events", el, starts=starts, ends=ends))
        if local == "transaction":
            problems.append(doc.problem("transaction_limited", el, "warning"))
    for where in ("preScript", "postScript"):
        text = spiff_text(el, where)
        if text is not None:
            problems.extend(_check_script(doc, el, text, where))
    return problems


# ---- process-wide checks ------------------------------------------------------------

def _call_graph(ctx):
    calls = defaultdict(set)
    for _doc, proc in ctx.executable():
        for call in proc.iter(_q("callActivity")):
            calls[proc.get("id")].add((call.get("calledElement") or "").strip())
    return calls


def _reachable_calls(calls, start):
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        for nxt in calls.get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_lanes(ctx, doc, proc):
    problems = []
    for lane in proc.iter(_q("lane")):
        # A lane that only groups child lanes assigns nothing itself (spiff takes the
        # innermost lane of each node), so only leaf lanes must name a group.
        if lane.find(_q("childLaneSet")) is not None:
            continue
        name = (lane.get("name") or "").strip()
        if name not in ctx.known_groups:
            problems.append(doc.problem("unknown_lane", lane, lane=name))
    return problems


def _check_gateways(ctx, doc, proc):
    problems = []
    outgoing = defaultdict(list)
    for flow in proc.iter(_q("sequenceFlow")):
        outgoing[flow.get("sourceRef")].append(flow)
    gateways = [*proc.iter(_q("exclusiveGateway")), *proc.iter(_q("inclusiveGateway"))]
    for gateway in gateways:
        flows = outgoing.get(gateway.get("id"), [])
        default = gateway.get("default")
        conditional = False
        for flow in flows:
            if flow.get("id") == default:
                continue
            node = flow.find(_q("conditionExpression"))
            text = node.text if node is not None else None
            if text is None or not text.strip():
                # spiff turns a lone unconditional flow into the default (TaskParser.py)
                if len(flows) > 1:
                    problems.append(doc.problem("condition_missing", flow,
                                                gateway=gateway.get("id")))
                continue
            conditional = True
            problems.extend(_check_condition(ctx, doc, flow, text))
        if conditional and not default:
            problems.append(doc.problem("gateway_no_default", gateway, "warning"))
    return problems


def _check_condition(ctx, doc, flow, text):
    expr = shorten(text)
    tree, reason = parse_expression(text)
    if tree is None:
        return [doc.problem("condition_syntax", flow, expr=expr, detail=reason)]
    known = ctx.known_names()
    problems = [doc.problem("condition_unknown_name", flow, expr=expr, name=name)
                for name in free_names(tree) if name not in known]
    if not compiles_as_written(text, "eval"):
        problems.append(doc.problem("expression_whitespace", flow, "warning", expr=expr))
    return problems


def _flow_graph(proc):
    nodes = {}
    for el in proc.iter():
        if bpmn_local(el) in FLOW_NODE_TAGS and el.get("id"):
            nodes[el.get("id")] = el
    succ = defaultdict(list)
    for flow in proc.iter(_q("sequenceFlow")):
        succ[flow.get("sourceRef")].append(flow.get("targetRef"))
    for event in proc.iter(_q("boundaryEvent")):
        succ[event.get("attachedToRef")].append(event.get("id"))
    return nodes, succ


def _cycles(nodes, succ):
    """Strongly connected components that form a cycle (iterative Tarjan: long chains
    must not hit Python's recursion limit)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(succ.get(root, ())))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in nodes:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in succ.get(node, ()):
                        found.append(component)
    return found


def _waits(ctx, el):
    """Whether el (or anything inside it, or the process it calls) waits for input."""
    if bpmn_local(el) == "callActivity":
        target = ctx.processes.get((el.get("calledElement") or "").strip())
        # An unknown called process might wait; do not accuse the loop of spinning.
        return target is None or _waits(ctx, target[1])
    for node in el.iter():
        local = bpmn_local(node)
        # A call nested deeper is assumed to wait rather than followed further.
        if local in WAITING_TAGS or (local == "callActivity" and node is not el):
            return True
        if local == "boundaryEvent":
            if any(kind in WAITING_BOUNDARY for kind, _ in event_definitions(node)):
                return True
    return False


def _check_loops(ctx, doc, proc):
    nodes, succ = _flow_graph(proc)
    order = {node_id: pos for pos, node_id in enumerate(nodes)}
    problems = []
    for component in _cycles(nodes, succ):
        if any(_waits(ctx, nodes[node_id]) for node_id in component):
            continue
        members = sorted(component, key=order.get)
        gateways = [m for m in members if "Gateway" in (bpmn_local(nodes[m]) or "")]
        anchor = nodes[(gateways or members)[0]]
        problems.append(doc.problem("automatic_loop", anchor,
                                    nodes=shorten(", ".join(members), 160)))
    return problems


def _check_reachable(doc, scope, adhoc=False):
    children = [c for c in scope if bpmn_local(c) in FLOW_NODE_TAGS and c.get("id")]
    by_id = {c.get("id"): c for c in children}
    succ = defaultdict(list)
    for flow in scope.iterfind(_q("sequenceFlow")):
        succ[flow.get("sourceRef")].append(flow.get("targetRef"))
    for child in children:
        if bpmn_local(child) == "boundaryEvent":
            succ[child.get("attachedToRef")].append(child.get("id"))
    if adhoc:
        # spiff starts an ad hoc subprocess at every child without incoming flows.
        starts = [c for c in children if c.find(_q("incoming")) is None
                  and bpmn_local(c) != "boundaryEvent"]
    else:
        starts = [c for c in children if bpmn_local(c) == "startEvent"
                  or c.get("triggeredByEvent") == "true"]
    seen = {c.get("id") for c in starts}
    todo = list(seen)
    while todo:
        for nxt in succ.get(todo.pop(), ()):
            if nxt in by_id and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    problems = []
    for child in children:
        local = bpmn_local(child)
        if child.get("id") not in seen:
            problems.append(doc.problem("unreachable", child, "warning"))
        elif local in SUBPROCESS_TAGS:
            problems.extend(_check_reachable(doc, child, local == "adHocSubProcess"))
    return problems


def _check_process(ctx, doc, proc, calls):
    problems = []
    if proc.find(_q("startEvent")) is None:
        problems.append(doc.problem("no_start_event", proc))
    else:
        problems.extend(_check_reachable(doc, proc))
    for el in proc.iter():
        if el is not proc and bpmn_local(el) is not None:
            problems.extend(_check_element(ctx, doc, proc, el, calls))
    problems.extend(_check_lanes(ctx, doc, proc))
    problems.extend(_check_gateways(ctx, doc, proc))
    problems.extend(_check_loops(ctx, doc, proc))
    return problems


def _check_documents(ctx):
    problems = []
    owner = {}
    for doc in ctx.docs:
        if doc.kind == "dmn":
            decisions = [d for d in doc.root if local_name(d) == "decision"]
            if len(decisions) != 1:
                problems.append(doc.problem("dmn_decisions", doc.root, count=len(decisions)))
            for dec in decisions:
                if not any(local_name(t) == "decisionTable" for t in dec):
                    problems.append(doc.problem("dmn_no_table", dec))
                if owner.setdefault(("d", dec.get("id")), doc) is not doc:
                    problems.append(doc.problem("duplicate_decision", dec,
                                                decision=dec.get("id")))
            continue
        if doc.root.tag != _q("definitions"):
            continue    # the schema check has already refused it
        processes = list(doc.root.iter(_q("process")))
        if not any(p.get("isExecutable", "true") == "true" for p in processes):
            anchor = processes[0] if processes else doc.root
            problems.append(doc.problem("no_executable_process", anchor))
        for proc in processes:
            if owner.setdefault(("p", proc.get("id")), doc) is not doc:
                problems.append(doc.problem("duplicate_process", proc, process=proc.get("id")))
        # spiff refuses any file declaring a data store: it has no implementations.
        for store in doc.root.iter(_q("dataStore")):
            problems.append(doc.problem("unsupported_data_store", store,
                                        name=store.get("name") or store.get("id")))
    return problems


def check_files(files: dict[str, bytes], *, known_groups: set[str],
                form_fields: Callable[[str], list[str] | None],
                script_names: set[str] = frozenset()) -> list[Problem]:
    """Return every problem (errors and warnings) that would stop or distort execution.

    ``files`` maps file names to the raw bytes of the .bpmn and .dmn files deployed
    together. ``form_fields(name)`` gives a form's field names or None when the form
    does not exist; ``script_names`` are the functions the script sandbox offers. Never
    raises for bad input: malformed or unsafe XML is reported as a problem too. Deploy
    must be refused when any returned problem has severity "error".
    """
    docs, problems = parse_documents(files)
    for doc in docs:
        problems.extend(schema_problems(doc))
    ctx = _Context(docs, known_groups, form_fields, script_names)
    steps = [lambda: _check_documents(ctx)]
    calls = _call_graph(ctx)
    for doc, proc in ctx.executable():
        steps.append(lambda doc=doc, proc=proc: _check_process(ctx, doc, proc, calls))
    for step in steps:
        try:
            problems.extend(step())
        except Exception as exc:  # noqa: BLE001 - a check bug must refuse, not crash
            logger.exception("deploy check step failed")
            problems.append(Problem("internal_error", None, None, "error",
                                    {"detail": type(exc).__name__}))
    if docs and not any(p.severity == "error" for p in problems):
        # Last, let spiff parse the files as deploy will. Only when nothing above failed:
        # spiff stops at its first complaint, which is then usually one already listed.
        refusal = spiff_refusal(docs)
        if refusal is not None:
            problems.append(refusal)
    return problems


