"""The deploy check of a generated diagram with 50 user tasks.

The diagram looks like the office's own, only longer: four department lanes, 50 user
tasks with forms and due periods, an exclusive gateway after every fifth task (a
condition on the task's form field, a default flow back to the chain), a boundary timer
on every tenth task and a script task in between. Timed: ``engine.deploy.check_unit``,
the check every save in the modeler and every deploy runs (XML safety, schema, every
element, spiff's own parse), without drawing information (as files in ``bpmn/``).
"""

import time

from bench.common import Figure, make_app, median, percentile, scratch_sqlite, seed

TASKS = 50
RUNS = 15
TARGET_MS = 300.0
LANES = ("market", "quality", "finance", "leadership")
NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')


def _user_task(n):
    form, due = ("admission_quality_review", "5WD") if n % 5 == 4 else \
        ("overdue_escalation", "P3D")
    return (f'<bpmn:userTask id="task_{n}" name="第 {n} 步">'
            "<bpmn:extensionElements><spiffworkflow:properties>"
            f'<spiffworkflow:property name="form" value="{form}"/>'
            f'<spiffworkflow:property name="due" value="{due}"/>'
            "</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>")


def generate(tasks=TASKS):
    """The BPMN text of a process with ``tasks`` user tasks (see the module docstring)."""
    nodes, flows, lanes = [], [], {lane: [] for lane in LANES}

    def flow(source, target, condition=None):
        body = (f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>"
                if condition else "")
        flows.append(f'<bpmn:sequenceFlow id="f_{len(flows)}" sourceRef="{source}" '
                     f'targetRef="{target}">{body}</bpmn:sequenceFlow>')

    nodes.append('<bpmn:startEvent id="start"/>')
    lanes["market"].append("start")
    previous = "start"
    for n in range(tasks):
        lane = LANES[n % len(LANES)]
        nodes.append(_user_task(n))
        lanes[lane].append(f"task_{n}")
        flow(previous, f"task_{n}")
        previous = f"task_{n}"
        if n % 10 == 9:
            timer = (f'<bpmn:boundaryEvent id="late_{n}" attachedToRef="task_{n}" '
                     'cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeDate>'
                     "deadline_in_working_days(5)</bpmn:timeDate></bpmn:timerEventDefinition>"
                     "</bpmn:boundaryEvent>")
            nodes.append(timer)
            nodes.append(f'<bpmn:endEvent id="late_end_{n}"/>')
            lanes[lane] += [f"late_{n}", f"late_end_{n}"]
            flow(f"late_{n}", f"late_end_{n}")
        if n % 5 == 4:
            nodes.append(f'<bpmn:exclusiveGateway id="gate_{n}" default="f_{len(flows) + 1}"/>')
            nodes.append(f'<bpmn:scriptTask id="note_{n}"><bpmn:script>checked_{n} = '
                         f"quality_ok</bpmn:script></bpmn:scriptTask>")
            lanes[lane] += [f"gate_{n}", f"note_{n}"]
            flow(previous, f"gate_{n}")
            flow(f"gate_{n}", f"note_{n}")  # the default
            flow(f"gate_{n}", "end_rejected", "quality_ok == False")
            previous = f"note_{n}"
    nodes.append('<bpmn:endEvent id="end"/>')
    nodes.append('<bpmn:endEvent id="end_rejected"/>')
    lanes["market"] += ["end", "end_rejected"]
    flow(previous, "end")
    lane_xml = "".join(
        f'<bpmn:lane id="lane_{lane}" name="{lane}">'
        + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
        + "</bpmn:lane>" for lane, refs in lanes.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {NS} '
            'id="bench_definitions" targetNamespace="http://yingjiang.gov.cn/brand/bench">'
            '<bpmn:process id="bench_fifty" name="五十步" isExecutable="true">'
            f'<bpmn:laneSet id="lanes">{lane_xml}</bpmn:laneSet>'
            + "".join(nodes) + "".join(flows) + "</bpmn:process></bpmn:definitions>")


def run(options):
    from engine import deploy, services

    app = make_app(scratch_sqlite("deploy"))
    seed(app)
    files = {"bench_fifty.bpmn": generate().encode()}
    with app.app_context():
        forms = app.extensions["brand_forms"]
        names = services.script_names()
        problems = deploy.check_unit(files, forms, names)  # also the warm-up
        errors = [p.message() for p in problems if p.severity == "error"]
        if errors:
            raise RuntimeError(f"the generated diagram fails its check: {errors[:3]}")
        timings = []
        for _ in range(RUNS):
            began = time.perf_counter()
            deploy.check_unit(files, forms, names)
            timings.append(time.perf_counter() - began)
        began = time.perf_counter()
        deploy.deploy_unit(files, forms, "bench", "bench", names)
        deployed = time.perf_counter() - began
    value = median(timings)
    return [Figure(
        "deploy", f"deploy check, {TASKS}-task diagram", value * 1000, "ms",
        f"{value * 1000:.0f} ms", reference=f"max {max(timings) * 1000:.0f} ms",
        target=f"<= {TARGET_MS:g} ms", met=value * 1000 <= TARGET_MS,
        note=f"median of {RUNS}; {len(files['bench_fifty.bpmn']):,} bytes, "
             f"{len(problems)} warnings; p90 {percentile(timings, 90) * 1000:.0f} ms; "
             f"check + parse + store as a new version {deployed * 1000:.0f} ms")]
