"""Department isolation, generated: every route of the application, every department, an
enterprise and another enterprise, and an anonymous visitor.

``EXPECTED`` below is the table of who may use what. Each route (method and URL rule, as
in ``app.url_map``) has one or more probes; a probe names real ids from seeded cases
(``tests/seeded_world.py``) and the actors that must get through. Everyone else must be
refused: 401 or 403, or a redirect to the login page. A route added to the application
without a line here fails ``test_every_route_has_an_expectation``.

Probes that act send bodies that the allowed actors get refused on the data (422, 409) or
that act on a spare object, so that one probe does not change what the next one sees.
"""

import re
from dataclasses import dataclass, field

import pytest
from seeded_world import build_world
from sqlalchemy import select

from engine.accounts import GROUPS, create_user
from engine.models import User
from web.extensions import db

# -- actors --------------------------------------------------------------------------------------

# "enterprise" is ent-b (licensed, with an expulsion hearing open); "other-enterprise" is
# ent-a (applying for admission).
DEPARTMENTS = tuple(g for g, _zh, _en in GROUPS if g != "enterprise")
ACTORS = DEPARTMENTS + ("enterprise", "other-enterprise", "anonymous")
USERNAMES = {"enterprise": "ent-b", "other-enterprise": "ent-a", "anonymous": None}

EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {"anonymous"}
STAFF = frozenset(DEPARTMENTS)
ENTERPRISES = frozenset({"enterprise", "other-enterprise"})
NOBODY = frozenset()
OVERSIGHT = frozenset({"leadership", "office"})
OFFICE = frozenset({"office"})
LEDGER = frozenset({"finance", "office", "leadership"})
COMPLAINT_STAFF = frozenset({"protection", "service"}) | OVERSIGHT
KEY_ADMINS = frozenset({"it", "office"})
LABEL_MANAGERS = frozenset({"enterprise", "market"})
EXPULSION_STARTERS = frozenset({"protection", "office", "leadership"})
ROYALTY_STAFF = frozenset({"finance", "market"}) | OVERSIGHT
INSPECTION_STAFF = frozenset({"quality", "protection"}) | OVERSIGHT
CERTIFICATE_READERS = frozenset({"quality", "market"}) | OVERSIGHT


def only(*actors):
    return frozenset(actors)


@dataclass
class P:
    """One probe: the actors allowed, URL arguments (names of world ids), a query string,
    and a body (JSON for /api/, form fields elsewhere)."""

    allowed: frozenset
    query: str = ""
    body: object = None
    answers: tuple = ()          # statuses that count as an answer, not a refusal
    args: dict = field(default_factory=dict)


def p(allowed, query="", body=None, answers=(), **args):
    return P(allowed, query, body, answers, args)


TASK = "task_id"
NOT_DATA = {"data": {"__probe__": "x"}}          # an unknown field: always 422

# Per task target, who may open it and act on it: the task's own department (an enterprise
# task: only that enterprise). Assigning needs a department lead: enterprises have none.
TASKS = {"market_task": only("market"), "quality_task": only("quality"),
         "protection_task": only("protection"), "enterprise_task": only("enterprise")}


def per_task(body=None, leads_only=False):
    return [p(NOBODY if leads_only and allowed == {"enterprise"} else allowed, body=body,
              **{TASK: target}) for target, allowed in TASKS.items()]


# Who sees a case: its enterprise, leadership and office, and departments with a task in it.
CASES = {
    "admission_case": only("other-enterprise", "market") | OVERSIGHT,
    "licence_case": only("enterprise", "quality", "market") | OVERSIGHT,
    # The enterprise answers for a complaint through the deposit case, never reads the
    # complaint itself (the complainant's name and phone are in it).
    "complaint_case": only("protection", "quality") | OVERSIGHT,
    "expulsion_case": only("enterprise", "general") | OVERSIGHT,
}


def per_case(name="instance_id"):
    return [p(allowed, **{name: target}) for target, allowed in CASES.items()]


LICENCE = {"licence_id": "licence"}
BATCH = {"batch_id": "batch"}

EXPECTED = {
    # -- sign-in, home, language, static ----------------------------------------------------
    "GET /": p(EVERYONE),          # the front door: the anonymous are sent to /brand/
    "GET /login": p(EVERYONE),
    "POST /login": p(EVERYONE, body={"username": "nobody", "password": "wrong"},
                     answers=(401,)),
    "POST /logout": p(SIGNED_IN),
    "GET /lang/<code>": p(EVERYONE, code="=en"),
    "GET /static/<path:filename>": p(EVERYONE, filename="=app.css"),

    # -- inbox and tasks (web) ----------------------------------------------------------------
    "GET /inbox": p(SIGNED_IN),
    "GET /tasks/<int:task_id>": per_task(),
    "POST /tasks/<int:task_id>": per_task(),
    "POST /tasks/<int:task_id>/claim": per_task(),
    "POST /tasks/<int:task_id>/unclaim": per_task(),
    "POST /tasks/<int:task_id>/assign": per_task(leads_only=True),
    "POST /tasks/<int:task_id>/delegate": per_task(),
    "POST /tasks/<int:task_id>/return": per_task(),
    "GET /cases": p(SIGNED_IN),
    "GET /cases/<int:instance_id>": per_case(),

    # -- the enterprise portal ----------------------------------------------------------------
    "GET /portal/": p(ENTERPRISES),
    "GET /portal/apply": p(ENTERPRISES),
    "POST /portal/apply": p(ENTERPRISES),
    "GET /portal/apply/<process_key>": p(ENTERPRISES, process_key="=licence_grant"),
    "POST /portal/apply/<process_key>": p(ENTERPRISES, process_key="=licence_grant"),
    "GET /portal/licences": p(ENTERPRISES),
    "GET /portal/licences/<int:licence_id>": p(LABEL_MANAGERS, **LICENCE),
    "POST /portal/licences/<int:licence_id>/label-batches": p(
        LABEL_MANAGERS, body={"count": "many"}, **LICENCE),
    "POST /portal/licences/<int:licence_id>/trace-events": p(
        only("enterprise"), body={"kind": "nonsense"}, **LICENCE),
    "POST /portal/label-batches/<int:batch_id>/cancel": p(
        LABEL_MANAGERS, body={"reason": "probe"}, batch_id="portal_spare_batch"),
    "GET /portal/label-batches/<int:batch_id>/codes.csv": p(LABEL_MANAGERS, **BATCH),
    "GET /portal/label-batches/<int:batch_id>/labels.pdf": p(LABEL_MANAGERS, **BATCH),

    # -- public: verification, complaints, brand portal, notices ------------------------------
    "GET /v/<path:code>": p(EVERYONE, query="geo=0", code="code"),
    "GET /V/<path:code>": p(EVERYONE, query="geo=0", code="code"),
    "GET /complaints/new": p(EVERYONE),
    "POST /complaints/new": p(EVERYONE, body={}),
    "GET /complaints/lookup": p(EVERYONE, query="reference=YJ-0000-0000-0000-0000"),
    "GET /complaints/<reference>": p(EVERYONE, reference="reference"),
    "GET /complaints": p(COMPLAINT_STAFF),
    "GET /brand/": p(EVERYONE),
    "GET /brand/pages/<slug>": p(EVERYONE, slug="=story"),
    "GET /brand/pages/<slug>/edit": p(OFFICE, slug="=story"),
    "POST /brand/pages/<slug>/edit": p(OFFICE, body={"title": ""}, slug="=story"),
    "GET /brand/pages/new": p(OFFICE),
    "POST /brand/pages/new": p(OFFICE, body={"slug": "NOT A SLUG"}),
    "GET /brand/enterprises": p(EVERYONE),
    "GET /brand/outlets": p(EVERYONE),
    "GET /brand/outlets/new": p(only("market")),
    "POST /brand/outlets/new": p(only("market"), body={"name": ""}),
    "GET /brand/outlets/<int:outlet_id>/edit": p(only("market"), outlet_id="=1"),
    "POST /brand/outlets/<int:outlet_id>/edit": p(only("market"), body={"name": ""},
                                                   outlet_id="=1"),
    "GET /brand/verify": p(EVERYONE, query="code=ABC"),
    "GET /notices": p(EVERYONE),
    "GET /notices.atom": p(EVERYONE),
    "GET /notices/<int:notice_id>": p(EVERYONE, notice_id="notice"),
    "GET /notices/new": p(OFFICE),
    "POST /notices/new": p(OFFICE, body={"title": ""}),

    # -- department pages ---------------------------------------------------------------------
    "GET /expulsions/new": p(EXPULSION_STARTERS),
    "POST /expulsions/new": p(EXPULSION_STARTERS, body={}),
    "GET /finance/deposits": p(LEDGER),
    "GET /finance/deposits.csv": p(LEDGER),
    "GET /finance/deposits/<int:enterprise_id>": [
        p(LEDGER | {"enterprise"}, enterprise_id="ent_b"),
        p(LEDGER | {"other-enterprise"}, enterprise_id="ent_a")],
    "GET /finance/deposits/<int:enterprise_id>.csv": p(LEDGER, enterprise_id="ent_b"),
    "GET /royalties/": p(ROYALTY_STAFF),
    "GET /royalties/enterprises/<int:enterprise_id>": [
        p(ROYALTY_STAFF | {"enterprise"}, enterprise_id="ent_b"),
        p(ROYALTY_STAFF | {"other-enterprise"}, enterprise_id="ent_a")],
    "GET /inspections/": p(INSPECTION_STAFF),
    "POST /inspections/new": p(only("quality"), body={"licence_id": "none"}),
    # No such inspection: staff are told so (404), everyone else is refused first.
    "GET /inspections/<int:inspection_id>": p(INSPECTION_STAFF, answers=(404,),
                                              inspection_id="=999999"),
    "GET /dashboard": p(OVERSIGHT),
    "GET /dashboard/<chart_key>.csv": p(OVERSIGHT, chart_key="=deposits"),
    "GET /calendar": p(SIGNED_IN),
    "POST /calendar/days": p(OFFICE, body={"day": "2031-05-07", "is_workday": "true"}),
    "POST /calendar/days/<day>/delete": p(OFFICE, day="calendar_day"),
    "GET /office/rules": p(OFFICE),
    "POST /office/rules/<key>": p(OFFICE, body={"value": "-1"},
                                  key="=deposit.repeat_dispute_count"),
    "GET /office/grades": p(OFFICE),
    "POST /office/grades/<code>/dimensions": p(OFFICE, body={"name": ""}, code="=organic"),
    "POST /office/grades/dimensions/<int:dimension_id>": p(
        OFFICE, body={"name": ""}, dimension_id="dimension"),
    "POST /office/grades/dimensions/<int:dimension_id>/delete": p(
        OFFICE, dimension_id="spare_dimension"),
    "GET /quality/certificates": p(CERTIFICATE_READERS | ENTERPRISES),
    "POST /quality/certificates": p(only("quality"), body={"number": ""}),

    # -- process administration (office) ------------------------------------------------------
    "GET /admin/processes": p(OFFICE),
    "POST /admin/processes/new": p(OFFICE, body={"key": ""}),
    "GET /admin/processes/<key>/modeler": p(OFFICE, key="=admission_review"),
    "GET /admin/processes/<key>/diff": p(OFFICE, key="=admission_review"),
    "GET /admin/processes/<key>/migrate": p(OFFICE, key="=admission_review"),
    "POST /admin/processes/<key>/migrate": p(OFFICE, key="=admission_review"),
    "GET /admin/processes/<key>/simulate": p(OFFICE, key="=admission_review"),
    "GET /admin/forms": p(OFFICE, query="name=complaint_file"),
    "GET /admin/forms/<name>": p(OFFICE, name="=complaint_file"),
    "POST /admin/forms/<name>": p(OFFICE, body={"text": ""}, name="=complaint_file"),

    # -- JSON API: tokens, tasks, processes, cases --------------------------------------------
    "GET /api/v1/openapi.json": p(EVERYONE),
    "POST /api/v1/auth/token": p(EVERYONE, body={}),
    "GET /api/v1/tasks": p(SIGNED_IN),
    "GET /api/v1/tasks/<int:task_id>": per_task(),
    "POST /api/v1/tasks/<int:task_id>/claim": per_task(),
    "POST /api/v1/tasks/<int:task_id>/unclaim": per_task(),
    "POST /api/v1/tasks/<int:task_id>/assign": per_task(body={"assignee": ""},
                                                         leads_only=True),
    "POST /api/v1/tasks/<int:task_id>/delegate": per_task(body={"delegate": ""}),
    "POST /api/v1/tasks/<int:task_id>/return": per_task(),
    "POST /api/v1/tasks/<int:task_id>/complete": per_task(body=NOT_DATA),
    "GET /api/v1/processes": p(SIGNED_IN),
    "POST /api/v1/processes/<key>/instances": [
        p(ENTERPRISES, body=NOT_DATA, key="=admission_review"),
        p(only("service"), body=NOT_DATA, key="=complaint"),
        p(EXPULSION_STARTERS, body=NOT_DATA, key="=expulsion"),
        p(only("quality"), body=NOT_DATA, key="=inspection")],
    "GET /api/v1/instances/<int:instance_id>": per_case(),
    "GET /api/v1/instances/<int:instance_id>/diagram": per_case(),
    "GET /api/v1/clock": p(SIGNED_IN),
    "POST /api/v1/clock/advance": p(KEY_ADMINS, body={"duration": "soon"}),

    # -- JSON API: complaints, deposits, licences, labels, rules, notices ---------------------
    "POST /api/v1/complaints": p(EVERYONE, body={}),
    "GET /api/v1/complaints/<reference>": p(EVERYONE, reference="reference"),
    "GET /api/v1/complaints": p(COMPLAINT_STAFF),
    "GET /api/v1/enterprises": p(SIGNED_IN),
    "GET /api/v1/enterprises/<int:enterprise_id>/deposit": [
        p(LEDGER | {"protection", "enterprise"}, enterprise_id="ent_b"),
        p(LEDGER | {"protection", "other-enterprise"}, enterprise_id="ent_a")],
    "GET /api/v1/enterprises/<int:enterprise_id>/royalties": [
        p(ROYALTY_STAFF | {"enterprise"}, enterprise_id="ent_b"),
        p(ROYALTY_STAFF | {"other-enterprise"}, enterprise_id="ent_a")],
    "GET /api/v1/royalties/yearly": p(ROYALTY_STAFF),
    "GET /api/v1/inspections": p(INSPECTION_STAFF),
    "GET /api/v1/inspections/risk": p(INSPECTION_STAFF, query="draw=1&seed=probe"),
    "GET /api/v1/inspections/<int:inspection_id>": p(INSPECTION_STAFF, answers=(404,),
                                                     inspection_id="=999999"),
    "GET /api/v1/certificates": p(CERTIFICATE_READERS | ENTERPRISES),
    "POST /api/v1/certificates": p(only("quality"), body={"number": ""}),
    "GET /api/v1/licences": p(SIGNED_IN),
    "GET /api/v1/licences/<int:licence_id>": p(STAFF | {"enterprise"}, **LICENCE),
    "GET /api/v1/licences/<int:licence_id>/label-batches": p(STAFF | {"enterprise"}, **LICENCE),
    "POST /api/v1/licences/<int:licence_id>/label-batches": p(
        LABEL_MANAGERS, body={"count": "many"}, **LICENCE),
    "GET /api/v1/licences/<int:licence_id>/trace-events": p(STAFF | {"enterprise"}, **LICENCE),
    "POST /api/v1/licences/<int:licence_id>/trace-events": p(
        only("enterprise"), body={"kind": "nonsense"}, **LICENCE),
    "GET /api/v1/label-batches/<int:batch_id>": p(STAFF | {"enterprise"}, **BATCH),
    "POST /api/v1/label-batches/<int:batch_id>/cancel": p(
        LABEL_MANAGERS, body={"reason": "probe"}, batch_id="spare_batch"),
    "GET /api/v1/label-batches/<int:batch_id>/codes.csv": p(LABEL_MANAGERS, **BATCH),
    "GET /api/v1/label-batches/<int:batch_id>/labels.pdf": p(LABEL_MANAGERS, **BATCH),
    "GET /api/v1/label-keys": p(SIGNED_IN),
    "POST /api/v1/label-keys/rotate": p(KEY_ADMINS),
    "POST /api/v1/label-keys/<int:key_id>/retire": p(KEY_ADMINS, key_id="key_id"),
    "GET /api/v1/verify/<path:code>": p(EVERYONE, code="code"),
    "GET /api/v1/rules": p(STAFF),
    "PUT /api/v1/rules/<key>": p(OFFICE, body={"value": -1},
                                 key="=deposit.repeat_dispute_count"),
    "GET /api/v1/notices": p(EVERYONE),
    "GET /api/v1/notices/<int:notice_id>": p(EVERYONE, notice_id="notice"),

    # -- JSON API: process administration (office) --------------------------------------------
    "POST /api/v1/processes/<key>/versions": p(OFFICE, body={}, key="=admission_review"),
    "POST /api/v1/processes/<key>/check": p(OFFICE, body={}, key="=admission_review"),
    "GET /api/v1/processes/<key>/versions/<int:number>": p(
        OFFICE, key="=admission_review", number="=1"),
    "GET /api/v1/processes/<key>/versions/<int:number>/diagram": p(
        OFFICE, key="=admission_review", number="=1"),
    "POST /api/v1/processes/<key>/versions/<int:number>/simulate": p(
        OFFICE, body={"data": []}, key="=admission_review", number="=1"),
    "GET /api/v1/processes/<key>/versions/<int:a>/diff/<int:b>": p(
        OFFICE, key="=admission_review", a="=1", b="=1"),
    "GET /api/v1/processes/<key>/versions/<int:a>/migration/<int:b>": p(
        OFFICE, key="=admission_review", a="=1", b="=1"),
    "POST /api/v1/processes/<key>/versions/<int:a>/migration/<int:b>": p(
        OFFICE, body={}, key="=admission_review", a="=1", b="=1"),
    "GET /api/v1/processes/<key>/drafts": p(OFFICE, key="=admission_review"),
    "POST /api/v1/processes/<key>/drafts": p(OFFICE, body={"from_version": "x"},
                                             key="=admission_review"),
    "GET /api/v1/drafts/<int:draft_id>": p(OFFICE, draft_id="draft"),
    "PUT /api/v1/drafts/<int:draft_id>": p(OFFICE, body={"lock_version": "x"},
                                           draft_id="draft"),
    "DELETE /api/v1/drafts/<int:draft_id>": p(OFFICE, draft_id="spare_draft"),
    "POST /api/v1/drafts/<int:draft_id>/check": p(OFFICE, draft_id="draft"),
    "POST /api/v1/drafts/<int:draft_id>/deploy": p(OFFICE, body={"lock_version": "x"},
                                                   draft_id="draft"),
    "POST /api/v1/drafts/<int:draft_id>/simulate": p(OFFICE, body={"data": []},
                                                     draft_id="draft"),
    "GET /api/v1/forms": p(OFFICE),
    "GET /api/v1/forms/<name>": p(OFFICE, name="=complaint_file"),
    "PUT /api/v1/forms/<name>": p(OFFICE, body={}, name="=complaint_file"),
}


def routes(app):
    """Every (method, rule) the application serves, as "METHOD /rule"."""
    return {f"{method} {rule.rule}" for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def probes():
    for route, declared in EXPECTED.items():
        for probe in declared if isinstance(declared, list) else [declared]:
            yield route, probe


def test_every_route_has_an_expectation(app):
    served = routes(app)
    undeclared = sorted(served - EXPECTED.keys())
    stale = sorted(EXPECTED.keys() - served)
    assert not undeclared, f"routes without an expectation in EXPECTED: {undeclared}"
    assert not stale, f"EXPECTED names routes the application no longer has: {stale}"


def test_the_table_names_known_actors():
    for route, probe in probes():
        assert probe.allowed <= EVERYONE, (route, probe.allowed - EVERYONE)


# -- running the probes --------------------------------------------------------------------------

_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def url_for_probe(route, probe, world):
    method, rule = route.split(" ", 1)

    def value(match):
        name = match.group(1)
        ref = probe.args[name]
        return ref[1:] if ref.startswith("=") else str(world[ref])

    path = _ARG.sub(value, rule)
    return method, path + (f"?{probe.query}" if probe.query else "")


class Actor:
    """One actor's web session (with its CSRF token) and API token."""

    def __init__(self, app, name, username):
        self.name, self.username = name, username
        self.web = app.test_client()
        self.api_token = None
        self.csrf = None
        if username is not None:
            self.login()
            response = self.web.post("/api/v1/auth/token",
                                     json={"username": username, "password": "demo"})
            assert response.status_code == 200, response.get_json()
            self.api_token = response.get_json()["token"]
        else:
            page = self.web.get("/login")
            self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def login(self):
        page = self.web.get("/login")
        self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.web.post("/login", data={"username": self.username, "password": "demo",
                                                 "csrf_token": self.csrf})
        assert response.status_code == 302, (self.username, response.status_code)

    def send(self, method, url, body):
        if url.startswith("/api/"):
            headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
            json_body = body if body is not None else ({} if method != "GET" else None)
            return self.web.open(url, method=method, json=json_body, headers=headers)
        data = dict(body or {})
        if method != "GET":
            data["csrf_token"] = self.csrf
        return self.web.open(url, method=method, data=data if method != "GET" else None)


def outcome(response, answers=()):
    """allowed, refused, or what else happened (a missing object, an error)."""
    status = response.status_code
    if status >= 500:
        return f"error {status}"
    if status in answers:
        return "allowed"
    if status in (401, 403):
        return "refused"
    # Flask-Login sends the anonymous to /login?next=...; a logout lands on /login itself.
    if status in (301, 302, 303) and "/login?next=" in (response.location or ""):
        return "refused"
    if status == 404:
        return "missing"
    return "allowed"


@pytest.fixture
def world(app, client, api):
    with app.app_context():
        existing = set(db.session.scalars(select(User.username)))
        for group in DEPARTMENTS:
            if group not in existing:
                # A department added to GROUPS after the demo data: give it a member.
                create_user(group, "demo", group, groups=[group], leads=[group])
        db.session.commit()
    return build_world(app, client, api)


@pytest.fixture
def actors(app, world):
    return {name: Actor(app, name, USERNAMES.get(name, name)) for name in ACTORS}


def test_every_route_refuses_every_actor_it_does_not_name(app, world, actors):
    wrong = []
    for route, probe in probes():
        method, url = url_for_probe(route, probe, world)
        for name, actor in actors.items():
            response = actor.send(method, url, probe.body)
            got = outcome(response, probe.answers)
            # Close streamed downloads: an open stream keeps its request's context alive.
            response.close()
            want = "allowed" if name in probe.allowed else "refused"
            if got != want:
                wrong.append(f"{name:17} {method} {url[:90]}: {response.status_code}, "
                             f"expected {want}")
            if route == "POST /logout" and actor.username:
                actor.login()
    assert not wrong, "\n" + "\n".join(wrong)


# -- what the lists show -------------------------------------------------------------------------

def groups_of(app, username):
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == username)).one()
        return user.group_ids, user.enterprise_id


def test_lists_show_only_what_the_actor_may_see(app, world, actors):
    task_groups = {world[t]: group for t, group in (
        ("market_task", "market"), ("quality_task", "quality"),
        ("protection_task", "protection"), ("enterprise_task", "enterprise"))}
    for name, actor in actors.items():
        if actor.username is None:
            continue
        groups, enterprise = groups_of(app, actor.username)
        tasks = actor.send("GET", "/api/v1/tasks?per_page=200", None).get_json()["items"]
        for task in tasks:
            if enterprise is not None:
                assert (task["group"], task["enterprise_id"]) == ("enterprise", enterprise), name
            else:
                assert task["group"] in groups and task["group"] != "enterprise", (name, task)
        listed = {t["id"] for t in tasks}
        for task_id, group in task_groups.items():
            mine = name == "enterprise" if group == "enterprise" else group in groups
            assert (task_id in listed) == mine, (name, task_id)

        # The inbox page links exactly the same tasks.
        inbox = actor.send("GET", "/inbox", None).text
        for task_id in task_groups:
            linked = f'href="/tasks/{task_id}"' in inbox
            assert linked == (task_id in listed), (name, task_id)

        # Cases: the case list page links only cases the actor may open.
        cases_page = actor.send("GET", "/cases", None).text
        for case, allowed in CASES.items():
            linked = f'href="/cases/{world[case]}"' in cases_page
            assert linked == (name in allowed), (name, case)

        enterprises = actor.send("GET", "/api/v1/enterprises", None).get_json()["items"]
        licences = actor.send("GET", "/api/v1/licences", None).get_json()["items"]
        if enterprise is not None:
            assert [e["id"] for e in enterprises] == [enterprise], name
            assert all(lic["enterprise_id"] == enterprise for lic in licences), name
            other = world["ent_a"] if enterprise == world["ent_b"] else world["ent_b"]
            refused = actor.send("GET", f"/api/v1/licences?enterprise={other}", None)
            assert refused.status_code == 403, name
        else:
            assert {world["ent_a"], world["ent_b"]} <= {e["id"] for e in enterprises}
            amounts = [e["balance_fen"] for e in enterprises if e["id"] == world["ent_b"]]
            reads_deposits = bool(groups & {"finance", "office", "leadership", "protection"})
            assert (amounts[0] is not None) == reads_deposits, name


def test_an_enterprise_reads_nothing_of_another_in_any_response(app, world, actors):
    """ent-a's token opened on ent-b's things gets refusals that name none of ent-b's data."""
    ent_a = actors["other-enterprise"]
    ent_b_name = "盈江县铜壁关草果农民专业合作社"
    for route, probe in probes():
        if "enterprise" not in probe.allowed or "other-enterprise" in probe.allowed:
            continue
        method, url = url_for_probe(route, probe, world)
        response = ent_a.send(method, url, probe.body)
        body = response.get_data(as_text=True)
        response.close()
        assert ent_b_name not in body, (route, url)
        assert world["code"] not in body, (route, url)
