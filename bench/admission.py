"""The admission review workload: its completions, the bare engine doing the same, and
realistic rows cloned in bulk from a real case.

The bare engine is SpiffWorkflow alone: the same ``bpmn/`` files parsed by spiff's own
parser, spiff's default script engine with the same script functions (service tasks
answer what ours would, without a database), and spiff's own serializer, whose JSON
carries the spec with every workflow. One completion there is: JSON -> workflow, run
the task, engine steps, workflow -> JSON.

Background rows are not made by running thousands of cases: one real case is run through
the engine, every table row it wrote is captured after each of its steps, and clones of
those rows (new ids, times moved into the past) are inserted in bulk.
"""

import json
import random
from datetime import timedelta
from pathlib import Path

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import DateTime, func, select
from sqlalchemy.types import JSON

from bench.common import ROOT, bulk_insert, db_value

APPLICATION = {
    "enterprise_name": "盈江县芒允茶业有限公司",
    "kind": "processor",
    "products": ["tea"],
    "base_location": "芒允乡",
    "base_area_mu": "120.5",
    "registered_capital_fen": 200_000_000,
    "employees": 40,
    "contact_name": "李明",
    "contact_phone": "13800000000",
    "innovation": "自主研发红茶加工工艺",
    "channels": "县城直营店两家、电商平台",
    "experience": "从事茶叶加工十年",
    "finance": "年营业额 800 万元",
    "certifications": "绿色食品 LB-12-2024",
}

# (who completes it, task, form data as the API receives it): an admission to the end.
STEPS = [
    ("market", "completeness_check", {"completeness_decision": "complete"}),
    ("quality", "quality_review", {"quality_ok": True, "quality_comment": "证书有效"}),
    ("finance", "finance_review", {"finance_ok": True, "capital_verified_fen": 200_000_000,
                                   "finance_comment": "资金状况良好"}),
    ("market", "scoring", {"score_innovation": 20, "score_channels": 20,
                           "score_experience": 20, "score_finance": 20}),
    ("enterprise", "pay_deposit", {"paid_amount_fen": 5_000_000, "paid_on": "2026-12-04",
                                   "payment_reference": "YJ-2026-0001"}),
    ("finance", "confirm_deposit", {"deposit_received": True, "deposit_comment": "已到账"}),
]

# What the diagram's service tasks return (ours also write the enterprise and the ledger).
SERVICE_RESULTS = {"open_application": "applying", "admit_enterprise": "admitted",
                   "reject_application": "rejected", "lapse_application": "lapsed"}


def step_values(forms):
    """The typed task data of each step, as the API's form loader makes it."""
    from engine.forms import load_json

    return [load_json(forms.get(form_name(forms, spec)), data) for _who, spec, data in STEPS]


def form_name(forms, spec):
    return {"completeness_check": "admission_completeness",
            "quality_review": "admission_quality_review",
            "finance_review": "admission_finance_review", "scoring": "admission_scoring",
            "pay_deposit": "admission_deposit_payment",
            "confirm_deposit": "admission_deposit_confirm"}[spec]


# -- the bare engine -------------------------------------------------------------------------

class _Environment(TaskDataEnvironment):
    def call_service(self, context, operation_name=None, operation_params=None, **_kw):
        if operation_name == "set_deposit_required":
            return json.dumps(int(context["deposit_required_fen"]))
        return json.dumps(SERVICE_RESULTS[operation_name])


class BareEngine:
    """SpiffWorkflow alone, on the admission review diagram (see the module docstring)."""

    def __init__(self, script_functions):
        bpmn = Path(ROOT, "bpmn")
        parser = SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_file(str(bpmn / "admission_review.bpmn"))
        parser.add_dmn_files([str(p) for p in sorted(bpmn.glob("admission_*.dmn"))])
        self.spec = parser.get_spec("admission_review")
        self.subprocess_specs = parser.get_subprocess_specs("admission_review")
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.script_engine = PythonScriptEngine(environment=_Environment(script_functions))

    def start(self, data):
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs,
                                script_engine=self.script_engine)
        workflow.task_tree.data.update(data)
        workflow.do_engine_steps()
        return self.serializer.serialize_json(workflow)

    def complete(self, document, spec_name, values):
        """One completion with its JSON round trip; returns the new JSON document."""
        workflow = self.serializer.deserialize_json(document)
        workflow.script_engine = self.script_engine
        task = next(t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                    if t.task_spec.bpmn_id == spec_name)
        task.data.update(values)
        task.run()
        workflow.do_engine_steps()
        return self.serializer.serialize_json(workflow)


# -- enterprises and their users --------------------------------------------------------------

def make_applicants(count, prefix):
    """``count`` registered enterprises, each with one enterprise user (committed)."""
    from engine import accounts, clock
    from engine.db import session
    from engine.models import Enterprise

    users = []
    for i in range(count):
        enterprise = Enterprise(name=f"{prefix}-{i}", kind="processor", status="registered",
                                created_at=clock.now())
        session().add(enterprise)
        session().flush()
        users.append(accounts.create_user(f"{prefix}-{i}", "bench", f"{prefix}-{i}",
                                          groups=["enterprise"], enterprise_id=enterprise.id))
    session().commit()
    return users


def staff_users():
    from engine.db import session
    from engine.models import User

    names = {"market", "quality", "finance"}
    return {u.username: u for u in session().scalars(select(User).where(User.username.in_(names)))}


def open_task_id(instance_id, spec):
    from engine.db import session
    from engine.models import HumanTask

    return session().scalar(select(HumanTask.id).where(
        HumanTask.instance_id == instance_id, HumanTask.spec_name == spec,
        HumanTask.state == "open"))


# -- captured rows and their clones -----------------------------------------------------------

CLONED_TABLES = ("enterprises", "instances", "human_tasks", "timers", "history",
                 "deposit_entries")


class Snapshot:
    """Every row of one case (and its enterprise) as they stood after one step."""

    def __init__(self, instance_id):
        from engine.db import Base, session
        from engine.models import Instance

        instance = session().get(Instance, instance_id)
        self.enterprise_id = instance.enterprise_id
        self.instance_id = instance_id
        self.started_at = instance.started_at
        self.tables = {}
        for name in CLONED_TABLES:
            table = Base.metadata.tables[name]
            if name == "enterprises":
                where = table.c.id == self.enterprise_id
            elif name == "instances":
                where = table.c.id == instance_id
            elif name == "deposit_entries":
                where = table.c.enterprise_id == self.enterprise_id
            else:
                where = table.c.instance_id == instance_id
            rows = session().execute(select(table).where(where).order_by(table.c.id)).all()
            self.tables[name] = (table, [row._asdict() for row in rows])


def capture_case(user, staff, values):
    """Run one admission to the end; return a Snapshot after the start and after each step."""
    from engine import cases, inbox
    from engine.db import session
    from engine.forms import load_json

    instance = cases.start_case(user, "admission_review", APPLICATION, load_json)
    session().commit()
    instance_id = instance.id
    snapshots = [Snapshot(instance_id)]
    for (who, spec, _data), step in zip(STEPS, values, strict=True):
        actor = user if who == "enterprise" else staff[who]
        inbox.complete(actor, open_task_id(instance_id, spec), step)
        session().commit()
        snapshots.append(Snapshot(instance_id))
    return snapshots


class Cloner:
    """Inserts clones of captured cases in bulk, each with its own enterprise and ids.

    ``running_share`` of the clones stop at a random step (with their open tasks and
    timers, started within the last three weeks); the others are finished cases of the
    last three years.
    """

    def __init__(self, kind, snapshots, running_share=0.1, seed=8):
        self.kind = kind
        self.snapshots = snapshots
        self.running_share = running_share
        self.random = random.Random(seed)
        self.next_id = {}
        self.plans = [self._plan(s) for s in snapshots]

    def _plan(self, snapshot):
        """Per table: columns and, per row, a recipe for each value."""
        plan = {}
        for name, (table, rows) in snapshot.tables.items():
            columns = [c.name for c in table.columns]
            recipes = []
            for row in rows:
                recipe = []
                for column in table.columns:
                    value = row[column.name]
                    if column.name == "id":
                        recipe.append(("id", None))
                    elif column.name == "instance_id" and value == snapshot.instance_id:
                        recipe.append(("instance", None))
                    elif column.name == "enterprise_id" and value == snapshot.enterprise_id:
                        recipe.append(("enterprise", None))
                    elif isinstance(column.type, DateTime) and value is not None:
                        recipe.append(("time", value))
                    elif isinstance(column.type, JSON):
                        recipe.append(("const", json.dumps(value, ensure_ascii=False)))
                    else:
                        recipe.append(("const", db_value(value, self.kind)))
                recipes.append(recipe)
            plan[name] = (columns, recipes)
        return plan

    def _shift(self, snapshot, now, running):
        if running:
            start = now - timedelta(days=self.random.uniform(0, 21))
        else:
            start = now - timedelta(days=self.random.uniform(30, 3 * 365))
        return start - snapshot.started_at

    def insert(self, connection, count, now, chunk=5_000):
        """Insert ``count`` cloned cases on ``connection`` (in its transaction); returns how
        many human-task rows they hold."""
        for name in CLONED_TABLES:
            table = self.snapshots[0].tables[name][0]
            top = connection.execute(select(func.max(table.c.id))).scalar() or 0
            self.next_id[name] = top + 1
        tasks = 0
        done = 0
        while done < count:
            batch = {name: [] for name in CLONED_TABLES}
            for _ in range(min(chunk, count - done)):
                running = self.random.random() < self.running_share
                index = self.random.randrange(len(self.snapshots) - 1) if running else -1
                self._clone(index, now, running, batch)
            for name in CLONED_TABLES:
                if batch[name]:
                    columns = self.plans[0][name][0]
                    bulk_insert(connection, name, columns, batch[name])
            tasks += len(batch["human_tasks"])
            done += min(chunk, count - done)
        return tasks

    def _clone(self, index, now, running, batch):
        snapshot = self.snapshots[index]
        shift = self._shift(snapshot, now, running)
        ids = {"instance": self.next_id["instances"], "enterprise": self.next_id["enterprises"]}
        kind = self.kind
        for name, (_columns, recipes) in self.plans[index].items():
            for recipe in recipes:
                row = []
                for what, value in recipe:
                    if what == "const":
                        row.append(value)
                    elif what == "id":
                        row.append(self.next_id[name])
                        self.next_id[name] += 1
                    elif what == "time":
                        row.append(db_value(value + shift, kind))
                    else:
                        row.append(ids[what])
                batch[name].append(tuple(row))
