"""Tests of the deploy check (engine/checks.py): each problem kind, safety, the corpus."""

import time
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.checks import CheckFailed, Problem, check_files, parse_specs, parse_xml

HERE = Path(__file__).parent
CORPUS = Path("/work/shared/cases/bpmn-corpus")
RISK_DMN = (HERE / "bpmn" / "checks" / "risk_level.dmn").read_bytes()

GROUPS = {"market", "quality", "finance", "leadership", "enterprise", "office",
          "protection", "general", "it", "service"}
FORMS = {"apply": ["amount", "approved", "items"], "review": ["verdict"],
         "intake": ["channel"]}

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


# ---- small BPMN builders -----------------------------------------------------------

def definitions(*processes, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<bpmn:definitions {NS} id="defs" targetNamespace="http://example.org/brand">\n'
            + extra + "".join(processes) + "</bpmn:definitions>\n")


def process(body, pid="proc", executable="true", lanes=""):
    return (f'<bpmn:process id="{pid}" isExecutable="{executable}">\n'
            + lanes + body + "</bpmn:process>\n")


def props(**values):
    inner = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>'
                    for k, v in values.items())
    return ("<bpmn:extensionElements><spiffworkflow:properties>" + inner
            + "</spiffworkflow:properties></bpmn:extensionElements>")


def user(tid, form="apply", **more):
    values = {"form": form, **more} if form is not None else more
    return f'  <bpmn:userTask id="{tid}">{props(**values) if values else ""}</bpmn:userTask>\n'


def script(tid, code):
    return (f'  <bpmn:scriptTask id="{tid}"><bpmn:script>{escape(code)}</bpmn:script>'
            "</bpmn:scriptTask>\n")


def flow(fid, src, dst, cond=None):
    if cond is None:
        return f'  <bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}"/>\n'
    return (f'  <bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}">'
            f"<bpmn:conditionExpression>{escape(cond)}</bpmn:conditionExpression>"
            "</bpmn:sequenceFlow>\n")


def chain(*nodes):
    """start -> each (id, xml) node in turn -> end, as one process body."""
    body = '  <bpmn:startEvent id="start"/>\n'
    previous = "start"
    for number, (node_id, xml) in enumerate(nodes):
        body += xml + flow(f"f{number}", previous, node_id)
        previous = node_id
    return body + '  <bpmn:endEvent id="end"/>\n' + flow("f_end", previous, "end")


def timer_event(eid, kind, expr, tag="intermediateCatchEvent"):
    return (f'  <bpmn:{tag} id="{eid}"><bpmn:timerEventDefinition>'
            f"<bpmn:{kind}>{escape(expr)}</bpmn:{kind}>"
            f"</bpmn:timerEventDefinition></bpmn:{tag}>\n")


def line_of(xml, element_id):
    needle = f'id="{element_id}"'
    assert xml.count(needle) == 1, needle
    return xml[:xml.index(needle)].count("\n") + 1


def run(xml, name="test.bpmn", extra_files=None, **kwargs):
    files = {name: xml.encode("utf-8") if isinstance(xml, str) else xml}
    files.update(extra_files or {})
    kwargs.setdefault("known_groups", GROUPS)
    kwargs.setdefault("form_fields", FORMS.get)
    return check_files(files, **kwargs)


def only(problems, code):
    return [p for p in problems if p.code == code]


def assert_one(problems, code, element_id, line, severity="error"):
    found = only(problems, code)
    assert len(found) == 1, problems
    assert (found[0].element_id, found[0].line, found[0].severity) == (
        element_id, line, severity)
    return found[0]


# ---- a diagram without problems ----------------------------------------------------

LANES = ('<bpmn:laneSet id="lanes"><bpmn:lane id="lane_market" name=" market ">'
         "<bpmn:flowNodeRef>apply_task</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n")
GOOD = definitions(process(
    '  <bpmn:startEvent id="start"/>\n'
    + user("apply_task", due="P5D", follow_up="3WD")
    + script("score_task", "score = amount * 2 if approved else 0")
    + '  <bpmn:exclusiveGateway id="gw" default="f_no"/>\n'
    + '  <bpmn:endEvent id="end_yes"/>\n  <bpmn:endEvent id="end_no"/>\n'
    + flow("f1", "start", "apply_task") + flow("f2", "apply_task", "score_task")
    + flow("f3", "score_task", "gw")
    + flow("f_yes", "gw", "end_yes", "score > 5 and approved and len(items) > 0")
    + flow("f_no", "gw", "end_no"), lanes=LANES))


def test_a_clean_diagram_has_no_problems_and_runs():
    assert run(GOOD) == []
    parser = parse_specs({"good.bpmn": GOOD.encode()})
    workflow = BpmnWorkflow(parser.get_spec("proc"), parser.get_subprocess_specs("proc"))
    workflow.do_engine_steps()
    ready = [t.task_spec.name for t in workflow.get_tasks() if t.state == 16]
    assert ready == ["apply_task"]


# ---- unsafe and broken XML ---------------------------------------------------------

def test_malformed_xml_is_a_problem_with_its_line():
    xml = '<?xml version="1.0"?>\n<bpmn:definitions ' + NS + '>\n  <bpmn:process>\n'
    problems = run(xml)
    assert [(p.code, p.line) for p in problems] == [("xml_malformed", 4)]
    with pytest.raises(CheckFailed) as caught:
        parse_xml(xml.encode(), "bad.bpmn")
    assert caught.value.problems[0].code == "xml_malformed"
    assert caught.value.problems[0].filename == "bad.bpmn"


@pytest.mark.parametrize("data", [b"", b"\x00\xff\xfe", b"<a/>", b"plain text",
                                  "<a>\u00e9</a>".encode("latin-1")])
def test_garbage_never_raises(data):
    problems = run(data)
    assert problems and all(p.severity == "error" for p in problems)
    assert all(isinstance(p.message("en"), str) for p in problems)


def test_a_dmn_file_with_garbage_never_raises():
    problems = run(GOOD, extra_files={"x.dmn": b"<definitions/>", "y.dmn": b"<"})
    assert {p.code for p in problems} >= {"xml_malformed", "unknown_document"}


def xxe(target):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<!DOCTYPE d [<!ENTITY secret SYSTEM "{target}">]>\n'
            f'<bpmn:definitions {NS} id="defs" targetNamespace="x">\n'
            '<bpmn:process id="proc"><bpmn:documentation>&secret;</bpmn:documentation>'
            '<bpmn:startEvent id="start"/></bpmn:process></bpmn:definitions>\n')


def everything_said(problems):
    return repr([(p, p.to_dict("zh"), p.to_dict("en")) for p in problems])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entity_is_refused_and_never_read(tmp_path, encoding):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    xml = xxe(secret.as_uri())
    data = xml.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"').encode(encoding)
    problems = run(data)
    assert [(p.code, p.line, p.severity) for p in problems] == [("xml_entities", 2, "error")]
    assert "TOP-SECRET-4711" not in everything_said(problems)
    for call in (lambda: parse_xml(data), lambda: parse_specs({"x.bpmn": data})):
        with pytest.raises(CheckFailed) as caught:
            call()
        assert caught.value.problems[0].code == "xml_entities"
        assert "TOP-SECRET-4711" not in str(caught.value) + everything_said(
            caught.value.problems)


def test_entity_missed_by_the_byte_scan_is_still_refused(tmp_path, monkeypatch):
    import engine.xmlsafe
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    monkeypatch.setattr(engine.xmlsafe, "_entity_declaration_line", lambda data: None)
    with pytest.raises(CheckFailed) as caught:
        parse_xml(xxe(secret.as_uri()).encode())
    assert caught.value.problems[0].code == "xml_entities"
    assert "TOP-SECRET-4711" not in everything_said(caught.value.problems)


def test_etc_passwd_entity_is_refused():
    problems = run(xxe("file:///etc/passwd"))
    assert [p.code for p in problems] == ["xml_entities"]
    assert "root:" not in everything_said(problems)


def test_billion_laughs_is_refused_quickly():
    entities = '<!ENTITY lol "lol">\n'
    for level in range(1, 10):
        previous = "lol" if level == 1 else f"lol{level - 1}"
        entities += f'<!ENTITY lol{level} "{("&" + previous + ";") * 10}">\n'
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n{entities}]>\n'
            "<lolz>&lol9;</lolz>\n").encode()
    started = time.monotonic()
    problems = run(data)
    assert time.monotonic() - started < 1.0
    assert [(p.code, p.line) for p in problems] == [("xml_entities", 3)]


def test_files_over_five_megabytes_are_refused():
    data = b"<a>" + b" " * (5 * 1024 * 1024) + b"</a>"
    assert [p.code for p in run(data)] == ["xml_too_large"]


def test_schema_violation_names_line_and_element():
    xml = definitions(process(chain(("t1", '  <bpmn:task id="t1" bogus="1"/>\n'))))
    problem = assert_one(run(xml), "xml_schema", "t1", line_of(xml, "t1"))
    assert "bogus" in problem.params["detail"]
    with pytest.raises(CheckFailed) as caught:
        parse_specs({"s.bpmn": xml.encode()})
    assert caught.value.problems[0].code == "xml_schema"


# ---- processes and what spiff refuses ----------------------------------------------

def test_no_executable_process():
    xml = definitions(process(chain(), executable="false"))
    assert_one(run(xml), "no_executable_process", "proc", line_of(xml, "proc"))


def test_process_without_start_event():
    xml = definitions(process('  <bpmn:endEvent id="end"/>\n'))
    assert_one(run(xml), "no_start_event", "proc", line_of(xml, "proc"))


def test_spiff_refusal_gets_element_and_line():
    loop = ('  <bpmn:task id="looping"><bpmn:standardLoopCharacteristics/></bpmn:task>\n')
    xml = definitions(process(chain(("looping", loop))))
    problem = assert_one(run(xml), "spiff_refused", "looping", line_of(xml, "looping"))
    assert "loopMaximum" in problem.params["detail"]
    with pytest.raises(CheckFailed) as caught:
        parse_specs({"loop.bpmn": xml.encode()})
    refused = caught.value.problems[0]
    assert (refused.code, refused.element_id, refused.line) == (
        "spiff_refused", "looping", line_of(xml, "looping"))


# ---- unsupported elements ----------------------------------------------------------

EVENT_SUBPROCESS = (
    '  <bpmn:subProcess id="on_error" triggeredByEvent="true">\n'
    '    <bpmn:startEvent id="err_start"><bpmn:errorEventDefinition/></bpmn:startEvent>\n'
    '    <bpmn:endEvent id="err_end"/>\n'
    '    <bpmn:sequenceFlow id="ef" sourceRef="err_start" targetRef="err_end"/>\n'
    "  </bpmn:subProcess>\n")


@pytest.mark.parametrize("fragment, element_id, code", [
    ('  <bpmn:complexGateway id="cx"/>\n', "cx", "unsupported_element"),
    ('  <bpmn:intermediateThrowEvent id="comp">'
     "<bpmn:compensateEventDefinition/></bpmn:intermediateThrowEvent>\n",
     "comp", "unsupported_compensation"),
    ('  <bpmn:task id="undo" isForCompensation="true"/>\n', "undo", "unsupported_compensation"),
    ('  <bpmn:endEvent id="sig_end"><bpmn:signalEventDefinition/></bpmn:endEvent>\n',
     "sig_end", "unsupported_event"),
    ('  <bpmn:intermediateThrowEvent id="link_out">'
     '<bpmn:linkEventDefinition name="a"/></bpmn:intermediateThrowEvent>\n',
     "link_out", "unsupported_event"),
    (EVENT_SUBPROCESS, "err_start", "unsupported_event"),
])
def test_unsupported_elements_even_when_unreachable(fragment, element_id, code):
    xml = definitions(process(chain() + fragment))
    assert_one(run(xml), code, element_id, line_of(xml, element_id))


def test_transaction_is_a_warning():
    tx = ('  <bpmn:transaction id="tx"><bpmn:startEvent id="tx_s"/><bpmn:endEvent id="tx_e"/>'
          '<bpmn:sequenceFlow id="tx_f" sourceRef="tx_s" targetRef="tx_e"/>'
          "</bpmn:transaction>\n")
    xml = definitions(process(chain(("tx", tx))))
    problems = run(xml)
    assert_one(problems, "transaction_limited", "tx", line_of(xml, "tx"), "warning")
    assert not [p for p in problems if p.severity == "error"]


def test_subprocess_needs_one_start_event():
    sub = ('  <bpmn:subProcess id="sub"><bpmn:endEvent id="sub_end"/></bpmn:subProcess>\n')
    xml = definitions(process(chain(("sub", sub))))
    problem = assert_one(run(xml), "subprocess_events", "sub", line_of(xml, "sub"))
    assert problem.params == {"starts": 0, "ends": 1}


# ---- timers ------------------------------------------------------------------------

def test_unquoted_timer_message_in_both_languages():
    xml = definitions(process(chain(("timer_1", timer_event("timer_1", "timeDuration",
                                                            "PT1S")))))
    line = line_of(xml, "timer_1")
    problem = assert_one(run(xml), "unquoted_timer", "timer_1", line)
    assert problem.message() == (
        f'第 {line} 行，元素 timer_1：定时器表达式 PT1S 必须加引号，写成 "PT1S"')
    assert problem.message("en") == (
        f'line {line}, element timer_1: timer expression PT1S must be quoted as "PT1S"')
    assert problem.to_dict() == {
        "code": "unquoted_timer", "element_id": "timer_1", "line": line,
        "severity": "error", "message": problem.message(), "filename": "test.bpmn"}


@pytest.mark.parametrize("kind, expr, code", [
    ("timeDuration", "PT1S", "unquoted_timer"),
    ("timeDuration", "P5D", "unquoted_timer"),
    ("timeDate", "2026-01-01T00:00:00", "unquoted_timer"),
    ("timeDate", "2026-12-31", "unquoted_timer"),
    ("timeCycle", "R3/PT10M", "unquoted_timer"),
    ("timeDuration", '"PT1X"', "timer_invalid_literal"),
    ("timeDuration", '"P"', "timer_invalid_literal"),
    ("timeDuration", "5", "timer_invalid_literal"),
    ("timeDate", '"tomorrow"', "timer_invalid_literal"),
    ("timeDate", '"P1D"', "timer_invalid_literal"),
    ("timeCycle", '"PT10M"', "timer_invalid_literal"),
    ("timeDuration", "PT1S +", "timer_syntax"),
    ("timeDuration", "", "timer_missing"),
    ("timeDuration", '\n   "PT1S"\n   ', "expression_whitespace"),
])
def test_timer_expression_problems(kind, expr, code):
    xml = definitions(process(chain(("wait", timer_event("wait", kind, expr)))))
    problems = run(xml)
    severity = "warning" if code == "expression_whitespace" else "error"
    assert_one(problems, code, "wait", line_of(xml, "wait"), severity)
    assert len(problems) == 1


@pytest.mark.parametrize("kind, expr", [
    ("timeDuration", '"PT1S"'), ("timeDuration", "'P1DT2H'"), ("timeDuration", "wait_for"),
    ("timeDuration", 'f"P{days}D"'), ("timeDate", '"2026-01-01T09:00:00+08:00"'),
    ("timeCycle", '"R3/PT10M"'), ("timeCycle", '"R/P1D"'),
])
def test_valid_timer_expressions(kind, expr):
    xml = definitions(process(chain(("wait", timer_event("wait", kind, expr)))))
    assert run(xml) == []


def test_boundary_timer_is_checked_too():
    boundary = ('  <bpmn:boundaryEvent id="late" attachedToRef="apply_task">'
                "<bpmn:timerEventDefinition><bpmn:timeDuration>P3D</bpmn:timeDuration>"
                "</bpmn:timerEventDefinition></bpmn:boundaryEvent>\n"
                '  <bpmn:endEvent id="late_end"/>\n' + flow("f_late", "late", "late_end"))
    xml = definitions(process(chain(("apply_task", user("apply_task"))) + boundary))
    assert_one(run(xml), "unquoted_timer", "late", line_of(xml, "late"))


def test_timer_without_expression():
    event = ('  <bpmn:intermediateCatchEvent id="wait">'
             "<bpmn:timerEventDefinition/></bpmn:intermediateCatchEvent>\n")
    xml = definitions(process(chain(("wait", event))))
    assert_one(run(xml), "timer_missing", "wait", line_of(xml, "wait"))


# ---- gateway conditions -----------------------------------------------------------

def gateway_diagram(condition, default=True, second=None, before=()):
    """start -> before... -> gw; gw -> end_yes when condition, gw -> end_no otherwise."""
    gw = '  <bpmn:exclusiveGateway id="gw"%s/>\n' % (' default="f_no"' if default else "")
    body = '  <bpmn:startEvent id="start"/>\n' + gw
    previous = "start"
    for number, (node_id, xml) in enumerate(before):
        body += xml + flow(f"f{number}", previous, node_id)
        previous = node_id
    body += flow("f_gw", previous, "gw")
    body += '  <bpmn:endEvent id="end_yes"/>\n  <bpmn:endEvent id="end_no"/>\n'
    body += flow("f_yes", "gw", "end_yes", condition) + flow("f_no", "gw", "end_no", second)
    return definitions(process(body))


def test_unknown_name_in_condition():
    xml = gateway_diagram("amount > limit", before=[("apply_task", user("apply_task"))])
    problem = assert_one(run(xml), "condition_unknown_name", "f_yes", line_of(xml, "f_yes"))
    assert problem.params["name"] == "limit"
    assert "limit" in problem.message() and "limit" in problem.message("en")


def test_every_source_of_names_is_known():
    dmn_task = ('  <bpmn:businessRuleTask id="rules"><bpmn:extensionElements>'
                "<spiffworkflow:calledDecisionId>risk_level</spiffworkflow:calledDecisionId>"
                "</bpmn:extensionElements></bpmn:businessRuleTask>\n")
    pre_post = ('  <bpmn:manualTask id="manual"><bpmn:extensionElements>'
                "<spiffworkflow:preScript>pre_value = 1</spiffworkflow:preScript>"
                "<spiffworkflow:postScript>post_value = 2</spiffworkflow:postScript>"
                "</bpmn:extensionElements></bpmn:manualTask>\n")
    condition = ("amount > 1 and approved and risk == 'low' and scored and pre_value"
                 " and post_value and channel and case_file and lookup(verdict)"
                 " and any(x > 1 for x in items) and sorted(items)")
    body = ('  <bpmn:dataObject id="case_file"/>\n'
            '  <bpmn:startEvent id="start">' + props(form="intake") + "</bpmn:startEvent>\n")
    nodes = [("apply_task", user("apply_task")), ("review_task", user("review_task", "review")),
             ("score", script("score", "scored = True")), ("rules", dmn_task),
             ("manual", pre_post)]
    xml = gateway_diagram(condition, before=nodes).replace(
        '  <bpmn:startEvent id="start"/>\n', body)
    problems = run(xml, extra_files={"risk.dmn": RISK_DMN}, script_names={"lookup"})
    assert problems == []
    parse_specs({"p.bpmn": xml.encode(), "risk.dmn": RISK_DMN})


def test_condition_syntax_error():
    xml = gateway_diagram("amount >", before=[("apply_task", user("apply_task"))])
    assert_one(run(xml), "condition_syntax", "f_yes", line_of(xml, "f_yes"))


def test_jvm_style_condition_is_refused():
    xml = gateway_diagram("${approved}", before=[("apply_task", user("apply_task"))])
    assert_one(run(xml), "condition_syntax", "f_yes", line_of(xml, "f_yes"))


def test_non_default_flow_without_condition():
    xml = gateway_diagram("approved", default=False,
                          before=[("apply_task", user("apply_task"))])
    problems = run(xml)
    assert_one(problems, "condition_missing", "f_no", line_of(xml, "f_no"))


def test_gateway_without_default_is_a_warning():
    xml = gateway_diagram("approved", default=False, second="not approved",
                          before=[("apply_task", user("apply_task"))])
    problems = run(xml)
    assert_one(problems, "gateway_no_default", "gw", line_of(xml, "gw"), "warning")
    assert [p.code for p in problems] == ["gateway_no_default"]


@pytest.mark.parametrize("condition", ["\n        approved\n    ", " approved"])
def test_condition_wrapped_in_whitespace_is_a_warning(condition):
    xml = gateway_diagram(condition, before=[("apply_task", user("apply_task"))])
    problems = run(xml)
    assert_one(problems, "expression_whitespace", "f_yes", line_of(xml, "f_yes"), "warning")
    assert len(problems) == 1


# ---- lanes, user tasks, rules, services, scripts ----------------------------------

def test_unknown_lane():
    lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="lane_x" name="Sales">'
             "<bpmn:flowNodeRef>apply_task</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n")
    xml = definitions(process(chain(("apply_task", user("apply_task"))), lanes=lanes))
    problem = assert_one(run(xml), "unknown_lane", "lane_x", line_of(xml, "lane_x"))
    assert problem.params == {"lane": "Sales"}


@pytest.mark.parametrize("task, code, params", [
    (user("t", form=None), "user_task_no_form", {}),
    (user("t", form=" "), "user_task_no_form", {}),
    (user("t", form="nope"), "unknown_form", {"form": "nope"}),
    (user("t", due="5 days"), "invalid_due", {"prop": "due", "value": "5 days"}),
    (user("t", follow_up="tomorrow"), "invalid_due",
     {"prop": "follow_up", "value": "tomorrow"}),
])
def test_user_task_properties(task, code, params):
    xml = definitions(process(chain(("t", task))))
    problem = assert_one(run(xml), code, "t", line_of(xml, "t"))
    assert problem.params == params


@pytest.mark.parametrize("due", ["P5D", "PT4H", "P1DT2H", "3WD", "10WD"])
def test_valid_due_values(due):
    xml = definitions(process(chain(("t", user("t", due=due, follow_up=due)))))
    assert run(xml) == []


def rule_task(decision):
    ext = ("" if decision is None else "<bpmn:extensionElements><spiffworkflow:calledDecisionId>"
           f"{decision}</spiffworkflow:calledDecisionId></bpmn:extensionElements>")
    return f'  <bpmn:businessRuleTask id="rules">{ext}</bpmn:businessRuleTask>\n'


def test_business_rule_task_decisions():
    xml = definitions(process(chain(("rules", rule_task("risk_level")))))
    assert run(xml, extra_files={"risk.dmn": RISK_DMN}) == []
    missing = assert_one(run(xml), "unknown_decision", "rules", line_of(xml, "rules"))
    assert missing.params == {"decision": "risk_level"}
    xml = definitions(process(chain(("rules", rule_task(None)))))
    assert_one(run(xml), "decision_missing", "rules", line_of(xml, "rules"))


def test_dmn_file_must_hold_exactly_one_decision():
    text = RISK_DMN.decode()
    start, stop = text.index("  <decision"), text.index("</decision>") + len("</decision>\n")
    second = text[start:stop].replace('id="', 'id="b_')
    data = (text[:stop] + second + text[stop:]).encode()
    xml = definitions(process(chain(("rules", rule_task("risk_level")))))
    problems = run(xml, extra_files={"risk.dmn": data})
    assert [(p.code, p.filename, p.element_id) for p in problems] == [
        ("dmn_decisions", "risk.dmn", "risk_defs")]


def test_service_task_needs_an_operator():
    def service(operator):
        return ('  <bpmn:serviceTask id="svc"><bpmn:extensionElements>'
                f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="r">'
                "<spiffworkflow:parameters/></spiffworkflow:serviceTaskOperator>"
                "</bpmn:extensionElements></bpmn:serviceTask>\n")
    xml = definitions(process(chain(("svc", service("  ")))))
    assert_one(run(xml), "service_operator_missing", "svc", line_of(xml, "svc"))
    assert run(definitions(process(chain(("svc", service("send_sms")))))) == []
    bare = definitions(process(chain(("svc", '  <bpmn:serviceTask id="svc"/>\n'))))
    assert_one(run(bare), "service_operator_missing", "svc", line_of(bare, "svc"))


def test_indented_script_is_a_warning():
    xml = definitions(process(chain(("calc", script("calc", "\n    x = 1\n    y = 2\n")))))
    problems = run(xml)
    assert_one(problems, "expression_whitespace", "calc", line_of(xml, "calc"), "warning")
    assert len(problems) == 1


def test_script_syntax_error():
    xml = definitions(process(chain(("calc", script("calc", "x = = 1")))))
    assert_one(run(xml), "script_syntax", "calc", line_of(xml, "calc"))


# ---- loops, calls, reachability ----------------------------------------------------

def loop_diagram(inner, condition="count < 3"):
    body = ('  <bpmn:startEvent id="start"/>\n' + inner
            + '  <bpmn:exclusiveGateway id="again" default="f_out"/>\n'
            + '  <bpmn:endEvent id="end"/>\n'
            + flow("f_in", "start", "work") + flow("f_check", "work", "again")
            + flow("f_back", "again", "work", condition) + flow("f_out", "again", "end"))
    return definitions(process(body))


def test_automatic_loop_is_an_error():
    xml = loop_diagram(script("work", "count = count + 1 if 'count' in dir() else 1"))
    problem = assert_one(run(xml), "automatic_loop", "again", line_of(xml, "again"))
    assert "work" in problem.params["nodes"]


@pytest.mark.parametrize("inner", [
    user("work", form="apply"),
    timer_event("work", "timeDuration", '"PT1H"'),
])
def test_loop_that_waits_is_allowed(inner):
    problems = run(loop_diagram(inner, "keep_waiting()"), script_names={"keep_waiting"})
    assert not only(problems, "automatic_loop")
    assert [p for p in problems if p.severity == "error"] == []


def call(cid, target):
    return f'  <bpmn:callActivity id="{cid}" calledElement="{target}"/>\n'


def test_call_activity_calling_its_own_process():
    xml = definitions(process(chain(("again", call("again", "proc")))))
    assert_one(run(xml), "recursive_call", "again", line_of(xml, "again"))


def test_mutual_recursion_across_files():
    first = definitions(process(chain(("to_b", call("to_b", "proc_b"))), pid="proc_a"))
    second = definitions(process(chain(("to_a", call("to_a", "proc_a"))), pid="proc_b"))
    problems = run(first, extra_files={"b.bpmn": second.encode()})
    assert {(p.code, p.element_id) for p in problems} == {
        ("recursive_call", "to_b"), ("recursive_call", "to_a")}


def test_call_activity_targets():
    xml = definitions(process(chain(("sub", call("sub", "elsewhere")))))
    assert_one(run(xml), "call_unknown_process", "sub", line_of(xml, "sub"))
    callee = definitions(process(chain(), pid="elsewhere"))
    assert run(xml, extra_files={"callee.bpmn": callee.encode()}) == []
    parser = parse_specs({"a.bpmn": xml.encode(), "callee.bpmn": callee.encode()})
    assert set(parser.get_subprocess_specs("proc")) == {"elsewhere"}


def test_unreachable_element_is_a_warning():
    xml = definitions(process(chain() + user("orphan")))
    problems = run(xml)
    assert_one(problems, "unreachable", "orphan", line_of(xml, "orphan"), "warning")
    assert [p.code for p in problems] == ["unreachable"]


def test_duplicate_process_across_files():
    first = definitions(process(chain()))
    problems = run(first, extra_files={"again.bpmn": first.encode()})
    assert [p.code for p in problems] == ["duplicate_process"]


def test_a_failing_form_lookup_refuses_instead_of_raising():
    def broken(name):
        raise RuntimeError("forms table is gone")
    xml = definitions(process(chain(("t", user("t")))))
    problems = run(xml, form_fields=broken)
    assert [(p.code, p.severity) for p in problems] == [("internal_error", "error")]


# ---- the Problem record ------------------------------------------------------------

def test_problem_message_without_line_or_element():
    bare = Problem("xml_entities", None, None, "error", {})
    assert bare.message().startswith("文件声明了")
    assert bare.message("en").startswith("the file declares")
    missing = Problem("unknown_form", "t", 3, "error", {})
    assert missing.message("en") == 'line 3, element t: the user task refers to form "?", ' \
        "which does not exist"


# ---- the corpus --------------------------------------------------------------------

CORPUS_FILES = sorted(CORPUS.glob("*/*.bpmn"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_corpus_file(path):
    data = path.read_bytes()
    problems = check_files({path.name: data}, known_groups=GROUPS, form_fields=lambda n: None)
    assert all(isinstance(p, Problem) for p in problems)
    for problem in problems:
        assert problem.severity in ("error", "warning")
        problem.to_dict("zh")
        problem.to_dict("en")
    if any(p.severity == "error" for p in problems):
        return
    parser = parse_specs({path.name: data})
    process_id = parser.get_process_ids()[0]
    spec = parser.get_spec(process_id)
    BpmnWorkflow(spec, parser.get_subprocess_specs(process_id))


def test_corpus_is_present():
    assert len(CORPUS_FILES) == 28
