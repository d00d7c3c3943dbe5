"""The inbox as each department uses it: listing and filters, the task verbs, the web pages.

Everything goes through the JSON API (``api`` fixture) or the HTML pages (``client``),
the way a clerk's browser or an integration would; the checks are what a person at
the brand office would look at: which tasks are listed, who holds a task, what the
case history says, what the page shows.
"""

import re

import pytest

from engine import accounts, clock
from engine.models import Enterprise
from web.extensions import db

APPLICATION = {
    "enterprise_name": "盈江县芒允茶业有限公司",
    "kind": "processor",
    "products": ["tea"],
    "base_location": "芒允乡",
    "base_area_mu": "80",
    "registered_capital_fen": 50_000_000,
    "employees": 12,
    "contact_name": "张华",
    "contact_phone": "13900000000",
    "innovation": "草果烘干工艺改良",
    "channels": "合作社直销、县城农贸市场",
    "experience": "种植草果八年",
    "finance": "年营业额 200 万元",
    "certifications": "绿色食品 LB-30-2023",
}

QUALITY_OK = {"quality_ok": True, "quality_comment": "抽检合格"}
FINANCE_OK = {"finance_ok": True, "capital_verified_fen": 50_000_000,
              "finance_comment": "账目清楚"}
COMPLETE = {"completeness_decision": "complete"}


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture
def staff(app):
    """Colleagues the demo data lacks: a second market clerk and a quality+finance deputy."""
    with app.app_context():
        accounts.create_user("market-b", "demo", "市场开发部 王芳", groups=["market"])
        accounts.create_user("market-c", "demo", "市场开发部 赵强", groups=["market"])
        accounts.create_user("deputy", "demo", "质检财务 陈静", groups=["quality", "finance"])
        db.session.commit()


@pytest.fixture
def ent_c(app):
    """A second applicant: in the demo data ``ent-b`` is already admitted and cannot apply."""
    return add_enterprises(app, ["ent-c"])[0]


def add_enterprises(app, usernames):
    """Enterprise logins, not yet admitted (each may have one running application)."""
    with app.app_context():
        for username in usernames:
            enterprise = Enterprise(name=f"盈江县{username}企业", kind="processor",
                                    status="registered", created_at=clock.now())
            db.session.add(enterprise)
            db.session.flush()
            accounts.create_user(username, "demo", enterprise.name, groups=["enterprise"],
                                 enterprise_id=enterprise.id)
        db.session.commit()
    return list(usernames)


def apply(api, user="ent-a", **changes):
    """File an admission application as ``user``; ent-a applies under its own name."""
    if user != "ent-a":
        changes.setdefault("enterprise_name", f"盈江县{user}食品有限公司")
    body = api.post("/processes/admission_review/instances", user,
                    {"data": dict(APPLICATION, **changes)}, expect=201)
    return body


def tasks(api, user, query=""):
    return api.get(f"/tasks?per_page=200{query}", user)


def task_of(api, user, instance_id, spec):
    found = [t for t in tasks(api, user)["items"]
             if t["instance_id"] == instance_id and t["task"] == spec]
    assert len(found) == 1, (user, spec, found)
    return found[0]


def history(api, instance_id, user="office"):
    return api.get(f"/instances/{instance_id}", user)["history"]


def kinds_for(api, instance_id, spec):
    """(kind, actor) of the task's history entries; the spurious "cancelled" entry every
    completion also writes is left out here (see ``test_completion_is_not_also_recorded_...``).
    """
    return [(h["kind"], h["actor"]) for h in history(api, instance_id)
            if h["task"] == spec and h["kind"] not in ("effect", "cancelled")]


# -- listing and filters -----------------------------------------------------------------------

def test_each_department_sees_only_its_own_tasks(api, ent_c):
    a = apply(api, "ent-a")["id"]
    b = apply(api, "ent-c")["id"]
    api.post(f"/tasks/{task_of(api, 'market', a, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})

    market = tasks(api, "market")
    assert market["total"] == 1
    assert [(t["instance_id"], t["task"], t["group"]) for t in market["items"]] == [
        (b, "completeness_check", "market")]
    assert [(t["instance_id"], t["task"]) for t in tasks(api, "quality")["items"]] == [
        (a, "quality_review")]
    assert [(t["instance_id"], t["task"]) for t in tasks(api, "finance")["items"]] == [
        (a, "finance_review")]
    for outsider in ("protection", "service", "general", "it", "leadership", "office"):
        assert tasks(api, outsider) == {"items": [], "total": 0, "page": 1, "per_page": 200}
    # Enterprises have nothing to do while the office reviews.
    assert tasks(api, "ent-a")["total"] == 0
    assert tasks(api, "ent-b")["total"] == 0


def test_group_filter_narrows_to_one_of_my_departments(api, staff):
    a = apply(api, "ent-a")["id"]
    api.post(f"/tasks/{task_of(api, 'market', a, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})

    both = tasks(api, "deputy")
    assert sorted(t["task"] for t in both["items"]) == ["finance_review", "quality_review"]
    only_quality = tasks(api, "deputy", "&group=quality")
    assert [(t["task"], t["group"]) for t in only_quality["items"]] == [
        ("quality_review", "quality")]
    assert only_quality["total"] == 1
    assert [t["task"] for t in tasks(api, "deputy", "&group=finance")["items"]] == [
        "finance_review"]
    # Naming another department's group does not reveal its tasks.
    assert tasks(api, "deputy", "&group=market")["total"] == 0
    assert tasks(api, "quality", "&group=finance")["total"] == 0


def test_assignee_me_lists_only_the_tasks_i_claimed(api, staff, ent_c):
    a = apply(api, "ent-a")["id"]
    b = apply(api, "ent-c")["id"]
    mine = task_of(api, "market", b, "completeness_check")
    api.post(f"/tasks/{mine['id']}/claim", "market")

    assert [t["instance_id"] for t in tasks(api, "market", "&assignee=me")["items"]] == [b]
    assert tasks(api, "market", "&assignee=me")["total"] == 1
    # The colleague still sees both in the department list, but none as theirs.
    assert {t["instance_id"] for t in tasks(api, "market-b")["items"]} == {a, b}
    assert tasks(api, "market-b", "&assignee=me")["total"] == 0

    body = api.get("/tasks?assignee=someone", "market", expect=422)
    assert "assignee" in body["error"]["fields"]


def test_process_filter(api):
    a = apply(api, "ent-a")["id"]
    listed = tasks(api, "market", "&process=admission_review")
    assert [(t["instance_id"], t["process_key"]) for t in listed["items"]] == [
        (a, "admission_review")]
    assert tasks(api, "market", "&process=brand_license")["total"] == 0


def test_overdue_filter_after_the_clock_moves(api, ent_c):
    a = apply(api, "ent-a")["id"]
    api.post(f"/tasks/{task_of(api, 'market', a, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})
    b = apply(api, "ent-c")["id"]

    assert tasks(api, "quality", "&overdue=true")["total"] == 0
    assert tasks(api, "market", "&overdue=true")["total"] == 0
    assert tasks(api, "market", "&overdue=false")["total"] == 1
    assert all(not t["overdue"] for t in tasks(api, "market")["items"])

    advanced = api.post("/clock/advance", "it", {"duration": "P10D"})
    assert advanced["fired"] == 2  # both reviews of ``a`` escalated

    overdue_quality = tasks(api, "quality", "&overdue=true")
    assert [(t["instance_id"], t["task"], t["overdue"]) for t in overdue_quality["items"]] == [
        (a, "quality_review", True)]
    assert [(t["instance_id"], t["task"]) for t in tasks(api, "market", "&overdue=1")["items"]
            ] == [(b, "completeness_check")]
    assert tasks(api, "market", "&overdue=false")["total"] == 0
    # The escalations just raised are not overdue themselves.
    leadership = tasks(api, "leadership", "&overdue=false")
    assert sorted(t["task"] for t in leadership["items"]) == [
        "escalate_finance", "escalate_quality"]
    assert tasks(api, "leadership", "&overdue=true")["total"] == 0

    body = api.get("/tasks?overdue=perhaps", "market", expect=422)
    assert "overdue" in body["error"]["fields"]


def test_enterprise_filter(api, ent_c):
    a = apply(api, "ent-a")
    b = apply(api, "ent-c")
    assert a["enterprise_id"] != b["enterprise_id"]

    only_b = tasks(api, "market", f"&enterprise={b['enterprise_id']}")
    assert [(t["instance_id"], t["enterprise_id"]) for t in only_b["items"]] == [
        (b["id"], b["enterprise_id"])]
    only_a = tasks(api, "market", f"&enterprise={a['enterprise_id']}")
    assert [t["instance_id"] for t in only_a["items"]] == [a["id"]]
    assert tasks(api, "market", "&enterprise=9999")["total"] == 0
    body = api.get("/tasks?enterprise=abc", "market", expect=422)
    assert "enterprise" in body["error"]["fields"]


def test_paging_keeps_the_total_and_covers_every_task_once(app, api):
    for user in add_enterprises(app, [f"ent-x{n}" for n in range(5)]):
        apply(api, user)

    seen = []
    for page, expected in ((1, 2), (2, 2), (3, 1)):
        body = api.get(f"/tasks?per_page=2&page={page}", "market")
        assert (body["total"], body["page"], body["per_page"]) == (5, page, 2)
        assert len(body["items"]) == expected
        seen += [t["id"] for t in body["items"]]
    assert len(set(seen)) == 5
    assert sorted(seen) == sorted(t["id"] for t in tasks(api, "market")["items"])
    past_the_end = api.get("/tasks?per_page=2&page=4", "market")
    assert past_the_end["items"] == [] and past_the_end["total"] == 5

    assert "page" in api.get("/tasks?page=0", "market", expect=422)["error"]["fields"]
    assert "per_page" in api.get("/tasks?per_page=500", "market",
                                 expect=422)["error"]["fields"]
    assert "page" in api.get("/tasks?page=x", "market", expect=422)["error"]["fields"]


def test_inbox_is_sorted_by_due_date_not_by_age(api, ent_c):
    # ``a`` reaches finance review first (due in 5 working days) ...
    a = apply(api, "ent-a")["id"]
    api.post(f"/tasks/{task_of(api, 'market', a, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})
    # ... ``b`` later reaches deposit confirmation, due in 3 working days: it comes first.
    b = apply(api, "ent-c")["id"]
    api.post(f"/tasks/{task_of(api, 'market', b, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})
    api.post(f"/tasks/{task_of(api, 'quality', b, 'quality_review')['id']}/complete",
             "quality", {"data": QUALITY_OK})
    api.post(f"/tasks/{task_of(api, 'finance', b, 'finance_review')['id']}/complete",
             "finance", {"data": FINANCE_OK})
    api.post(f"/tasks/{task_of(api, 'market', b, 'scoring')['id']}/complete", "market",
             {"data": {"score_innovation": 20, "score_channels": 20, "score_experience": 20,
                       "score_finance": 20}})
    api.post(f"/tasks/{task_of(api, 'ent-c', b, 'pay_deposit')['id']}/complete", "ent-c",
             {"data": {"paid_amount_fen": 1_000_000, "paid_on": "2026-12-01",
                       "payment_reference": "YJ-B-1"}})

    items = tasks(api, "finance")["items"]
    assert [(t["instance_id"], t["task"]) for t in items] == [
        (b, "confirm_deposit"), (a, "finance_review")]
    assert items[0]["id"] > items[1]["id"]
    assert items[0]["due_at"] < items[1]["due_at"]


# -- who may see a case and a task -------------------------------------------------------------

def send_back(api, instance_id, request="请补充营业执照"):
    check = task_of(api, "market", instance_id, "completeness_check")
    api.post(f"/tasks/{check['id']}/complete", "market",
             {"data": {"completeness_decision": "supplement", "supplement_request": request}})


def test_enterprises_never_see_each_others_tasks_or_cases(api, client, ent_c):
    a = apply(api, "ent-a")["id"]
    c = apply(api, "ent-c")["id"]
    send_back(api, a)
    send_back(api, c, "请补充检测报告")

    supplement = task_of(api, "ent-a", a, "supplement")
    assert supplement["group"] == "enterprise"
    assert [t["instance_id"] for t in tasks(api, "ent-a")["items"]] == [a]
    assert [t["instance_id"] for t in tasks(api, "ent-c")["items"]] == [c]
    assert tasks(api, "ent-b")["total"] == 0
    for other in ("ent-b", "ent-c"):
        body = api.get(f"/tasks/{supplement['id']}", other, expect=403)
        assert body["error"]["code"] == "forbidden"
        api.post(f"/tasks/{supplement['id']}/complete", other,
                 {"data": {"supplement_note": "冒名补正"}}, expect=403)
        api.post(f"/tasks/{supplement['id']}/claim", other, expect=403)
        assert api.get(f"/instances/{a}", other, expect=403)["error"]["code"] == "forbidden"
        assert tasks(api, other, f"&enterprise={supplement['enterprise_id']}")["total"] == 0
    api.get(f"/instances/{c}", "ent-a", expect=403)
    assert task_of(api, "ent-a", a, "supplement")["state"] == "open"

    # Staff do not act on an enterprise's task either, and it is not in their inbox.
    assert all(t["group"] != "enterprise" for t in tasks(api, "market")["items"])
    api.get(f"/tasks/{supplement['id']}", "market", expect=403)

    # The case: its enterprise, the oversight departments and market (which had a task).
    api.get(f"/instances/{a}", "protection", expect=403)
    api.get(f"/instances/{a}", "service", expect=403)
    for allowed in ("ent-a", "leadership", "office", "market"):
        assert api.get(f"/instances/{a}", allowed)["id"] == a, allowed

    # The same on the web pages.
    login(client, "ent-b")
    assert client.get(f"/cases/{a}").status_code == 403
    assert client.get(f"/tasks/{supplement['id']}").status_code == 403
    portal = client.get("/portal/").text
    assert "盈江县芒允茶业有限公司" not in portal and "请补充营业执照" not in portal


def test_a_department_sees_a_case_once_it_has_a_task_in_it(api):
    a = apply(api, "ent-a")["id"]
    api.get(f"/instances/{a}", "quality", expect=403)
    api.post(f"/tasks/{task_of(api, 'market', a, 'completeness_check')['id']}/complete",
             "market", {"data": COMPLETE})
    assert api.get(f"/instances/{a}", "quality")["status"] == "running"
    api.get("/instances/9999", "office", expect=404)


# -- the task verbs ----------------------------------------------------------------------------

def test_claim_and_unclaim_are_recorded(api, staff):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    assert task["assignee"] is None

    claimed = api.post(f"/tasks/{task['id']}/claim", "market")
    assert claimed["assignee"] == "market"
    # Claiming again is harmless and not recorded twice.
    assert api.post(f"/tasks/{task['id']}/claim", "market")["assignee"] == "market"
    body = api.post(f"/tasks/{task['id']}/claim", "market-b", expect=409)
    assert body["error"]["code"] == "conflict"
    # Only the holder or the lead may release it.
    api.post(f"/tasks/{task['id']}/unclaim", "market-b", expect=403)

    released = api.post(f"/tasks/{task['id']}/unclaim", "market")
    assert released["assignee"] is None
    assert api.post(f"/tasks/{task['id']}/claim", "market-b")["assignee"] == "market-b"

    assert kinds_for(api, a, "completeness_check") == [
        ("claimed", "market"), ("unclaimed", "market"), ("claimed", "market-b")]


def test_lead_assigns_to_a_member_only(api, staff):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")

    assigned = api.post(f"/tasks/{task['id']}/assign", "market", {"assignee": "market-b"})
    assert assigned["assignee"] == "market-b"
    assert task_of(api, "market-b", a, "completeness_check")["assignee"] == "market-b"
    assert [t["id"] for t in tasks(api, "market-b", "&assignee=me")["items"]] == [task["id"]]

    body = api.post(f"/tasks/{task['id']}/assign", "market", {"assignee": "quality"},
                    expect=422)
    assert body["error"]["code"] == "validation_failed"
    assert "assignee" in body["error"]["fields"]
    api.post(f"/tasks/{task['id']}/assign", "market", {"assignee": "nobody"}, expect=422)
    api.post(f"/tasks/{task['id']}/assign", "market", {"assignee": "ent-a"}, expect=422)
    # A clerk who is not the lead may not hand tasks around.
    api.post(f"/tasks/{task['id']}/assign", "market-b", {"assignee": "market-c"}, expect=403)
    # The lead may reassign.
    assert api.post(f"/tasks/{task['id']}/assign", "market",
                    {"assignee": "market-c"})["assignee"] == "market-c"
    assert task_of(api, "market", a, "completeness_check")["assignee"] == "market-c"

    entries = [h for h in history(api, a) if h["kind"] == "assigned"]
    assert [(h["actor"], h["detail"]["to"]) for h in entries] == [
        ("market", "market-b"), ("market", "market-c")]


def test_delegated_task_is_completed_by_its_owner_after_return(api, staff):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    url = f"/tasks/{task['id']}"

    # Delegating needs the task in hand first.
    api.post(f"{url}/delegate", "market", {"delegate": "market-b"}, expect=409)
    api.post(f"{url}/claim", "market")
    body = api.post(f"{url}/delegate", "market", {"delegate": "market"}, expect=422)
    assert "delegate" in body["error"]["fields"]
    body = api.post(f"{url}/delegate", "market", {"delegate": "finance"}, expect=422)
    assert body["error"]["fields"] == {"delegate": ["不是该部门成员"]}
    body = api.post(f"{url}/delegate", "market", {"delegate": "ent-a"}, expect=422)
    assert body["error"]["fields"] == {"delegate": ["不是该部门成员"]}

    delegated = api.post(f"{url}/delegate", "market", {"delegate": "market-b"})
    assert delegated["assignee"] == "market-b"

    # The delegate works on it but cannot finish it; nor can the owner while it is away.
    body = api.post(f"{url}/complete", "market-b", {"data": COMPLETE}, expect=409)
    assert body["error"]["code"] == "conflict"
    api.post(f"{url}/complete", "market", {"data": COMPLETE}, expect=409)
    api.post(f"{url}/complete", "market-c", {"data": COMPLETE}, expect=409)
    # Only the delegate can give it back.
    api.post(f"{url}/return", "market-c", {"note": "x"}, expect=409)
    assert task_of(api, "market", a, "completeness_check")["state"] == "open"

    returned = api.post(f"{url}/return", "market-b", {"note": "材料已核对，齐全"})
    assert returned["assignee"] == "market"
    api.post(f"{url}/return", "market-b", {"note": "again"}, expect=409)
    api.post(f"{url}/complete", "market-b", {"data": COMPLETE}, expect=409)

    done = api.post(f"{url}/complete", "market", {"data": COMPLETE})
    assert done["task"]["state"] == "completed"
    assert sorted(t["task"] for t in done["instance"]["open_tasks"]) == [
        "finance_review", "quality_review"]

    assert kinds_for(api, a, "completeness_check") == [
        ("claimed", "market"), ("delegated", "market"), ("returned", "market-b"),
        ("completed", "market")]
    entries = {h["kind"]: h for h in history(api, a)}
    assert entries["delegated"]["detail"]["to"] == "market-b"
    assert entries["returned"]["detail"]["note"] == "材料已核对，齐全"
    assert entries["completed"]["detail"]["data"]["completeness_decision"] == "complete"


def test_completing_someone_elses_claimed_task_is_a_conflict(api, staff):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    api.post(f"/tasks/{task['id']}/claim", "market-b")

    body = api.post(f"/tasks/{task['id']}/complete", "market", {"data": COMPLETE}, expect=409)
    assert body["error"]["code"] == "conflict"
    assert api.get(f"/instances/{a}", "market")["open_tasks"][0]["task"] == \
        "completeness_check"
    assert api.post(f"/tasks/{task['id']}/complete", "market-b",
                    {"data": COMPLETE})["task"]["state"] == "completed"


def test_completing_twice_is_a_conflict_and_changes_nothing(api, staff):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    api.post(f"/tasks/{task['id']}/complete", "market", {"data": COMPLETE})
    before = api.get(f"/instances/{a}", "office")

    body = api.post(f"/tasks/{task['id']}/complete", "market",
                    {"data": {"completeness_decision": "reject",
                              "completeness_comment": "改主意"}}, expect=409)
    assert body["error"]["code"] == "conflict"
    api.post(f"/tasks/{task['id']}/claim", "market-b", expect=409)
    api.post(f"/tasks/{task['id']}/unclaim", "market", expect=409)

    after = api.get(f"/instances/{a}", "office")
    assert after["history"] == before["history"]
    assert [t["task"] for t in after["open_tasks"]] == [t["task"] for t in before["open_tasks"]]
    assert after["enterprise_status"] == "applying"


def test_claiming_a_task_i_already_completed_is_a_conflict(api):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    api.post(f"/tasks/{task['id']}/complete", "market", {"data": COMPLETE})

    body = api.post(f"/tasks/{task['id']}/claim", "market", expect=409)
    assert body["error"]["code"] == "conflict"


def test_completion_is_not_also_recorded_as_cancelled(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    api.post(f"/tasks/{task['id']}/complete", "market", {"data": COMPLETE})

    entries = [(h["kind"], h["actor"]) for h in history(api, a)
               if h["task"] == "completeness_check"]
    assert entries == [("completed", "market")]


def test_other_department_cannot_complete(api):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    body = api.post(f"/tasks/{task['id']}/complete", "quality", {"data": COMPLETE},
                    expect=403)
    assert body["error"]["code"] == "forbidden"
    api.post(f"/tasks/{task['id']}/claim", "finance", expect=403)
    api.post(f"/tasks/{task['id']}/assign", "leadership", {"assignee": "leadership"},
             expect=403)
    assert api.get(f"/tasks/{task['id']}", "market")["assignee"] is None


def test_unknown_task_is_not_found(api):
    for method, path, body in (("GET", "/tasks/9999", None),
                               ("POST", "/tasks/9999/claim", {}),
                               ("POST", "/tasks/9999/unclaim", {}),
                               ("POST", "/tasks/9999/assign", {"assignee": "market"}),
                               ("POST", "/tasks/9999/delegate", {"delegate": "market"}),
                               ("POST", "/tasks/9999/return", {}),
                               ("POST", "/tasks/9999/complete", {"data": COMPLETE})):
        answer = api.call(method, path, "market", json=body, expect=404)
        assert answer["error"]["code"] == "not_found", path


def test_missing_or_invalid_token_is_401(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Basic {api.token('market')}"},
                    {"Authorization": "Bearer "}):
        for method, path in (("GET", "/api/v1/tasks"), ("GET", f"/api/v1/instances/{a}"),
                             ("POST", f"/api/v1/tasks/{task['id']}/claim"),
                             ("POST", f"/api/v1/tasks/{task['id']}/complete")):
            response = client.open(path, method=method, headers=headers,
                                   json={"data": COMPLETE} if method == "POST" else None)
            assert response.status_code == 401, (headers, path)
            assert response.get_json()["error"]["code"] == "not_authenticated"
    # A token whose signature was tampered with is refused too.
    genuine = api.token("market")
    # Not the last character: in unpadded base64 its lowest bits may be padding, so that a
    # change there can decode to the same signature.
    forged = genuine[:-6] + ("A" if genuine[-6] != "A" else "z") + genuine[-5:]
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert task_of(api, "market", a, "completeness_check")["assignee"] is None

    response = client.post("/api/v1/auth/token", json={"username": "market", "password": "x"})
    assert response.status_code == 401


def test_malformed_json_is_400(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    headers = {"Authorization": f"Bearer {api.token('market')}",
               "Content-Type": "application/json"}
    for path in (f"/api/v1/tasks/{task['id']}/complete", f"/api/v1/tasks/{task['id']}/assign",
                 "/api/v1/processes/admission_review/instances"):
        for raw in ('{"data": {"completeness_decision": "complete"', "[1, 2]", "",
                    '"complete"'):
            response = client.post(path, data=raw, headers=headers)
            assert response.status_code == 400, (path, raw, response.get_json())
            assert response.get_json()["error"]["code"] == "bad_request"
    assert task_of(api, "market", a, "completeness_check")["state"] == "open"


def test_wrong_field_types_are_422_with_field_errors(api):
    a = apply(api, "ent-a")["id"]
    check = task_of(api, "market", a, "completeness_check")
    body = api.post(f"/tasks/{check['id']}/complete", "market", {"data": []}, expect=422)
    assert "data" in body["error"]["fields"]
    body = api.post(f"/tasks/{check['id']}/complete", "market",
                    {"data": {"completeness_decision": "maybe"}}, expect=422)
    assert set(body["error"]["fields"]) == {"completeness_decision"}
    body = api.post(f"/tasks/{check['id']}/complete", "market",
                    {"data": {"completeness_decision": "supplement"}}, expect=422)
    assert set(body["error"]["fields"]) == {"supplement_request"}
    api.post(f"/tasks/{check['id']}/complete", "market", {"data": COMPLETE})

    review = task_of(api, "finance", a, "finance_review")
    body = api.post(f"/tasks/{review['id']}/complete", "finance",
                    {"data": {"finance_ok": "yes please", "capital_verified_fen": 12.5,
                              "finance_comment": 42}}, expect=422)
    assert body["error"]["code"] == "validation_failed"
    fields = body["error"]["fields"]
    assert set(fields) == {"finance_ok", "capital_verified_fen", "finance_comment"}
    assert all(isinstance(m, list) and m and all(isinstance(s, str) for s in m)
               for m in fields.values())
    # Nothing was recorded and the review is still open.
    assert task_of(api, "finance", a, "finance_review")["state"] == "open"
    assert not [h for h in history(api, a) if h["task"] == "finance_review"]

    body = api.post("/auth/token", "market", {"username": 5, "password": None}, expect=422)
    assert set(body["error"]["fields"]) == {"username", "password"}


# -- the web pages -----------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html):
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def login(client, username):
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post("/login", data={"username": username, "password": "demo",
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 302, response.text[:500]
    return response


def row_of(html, task_id):
    """The inbox table row that links to the task."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.S):
        if f'href="/tasks/{task_id}"' in row:
            return row
    raise AssertionError(f"task {task_id} is not listed")


def test_login_page_and_bad_password(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert 'type="hidden" name="csrf_token"' in page.text

    wrong = client.post("/login", data={"username": "market", "password": "nope",
                                        "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 401
    assert "用户名或密码错误" in wrong.text

    assert client.get("/inbox").status_code == 302  # not logged in
    assert "/login" in client.get("/inbox").headers["Location"]

    response = login(client, "market")
    assert response.headers["Location"].endswith("/")
    assert client.get("/inbox").status_code == 200


def test_inbox_page_marks_overdue_tasks(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")

    page = client.get("/inbox")
    assert page.status_code == 200
    row = row_of(page.text, task["id"])
    assert "材料完整性审查" in row and "准入审核：盈江县芒允茶业有限公司" in row
    assert 'class="overdue"' not in row and "已超期" not in row
    assert "共 1 项" in page.text

    api.post("/clock/advance", "it", {"duration": "P10D"})

    page = client.get("/inbox")
    row = row_of(page.text, task["id"])
    assert row.startswith('<tr class="overdue"')
    assert "已超期" in row
    assert client.get("/inbox?overdue=1").text.count('<tr class="overdue"') == 1
    assert row_of(client.get("/inbox?overdue=1").text, task["id"])


def test_claim_through_the_inbox_form(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")

    page = client.get("/inbox")
    row = row_of(page.text, task["id"])
    assert f'action="/tasks/{task["id"]}/claim"' in row and "未签收" in row
    response = client.post(f"/tasks/{task['id']}/claim",
                           data={"csrf_token": csrf_of(row), "next": "/inbox"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/inbox")

    page = client.get("/inbox")
    row = row_of(page.text, task["id"])
    assert "已签收" in page.text  # the flash message
    assert f'action="/tasks/{task["id"]}/unclaim"' in row
    assert "市场开发部（演示）" in row
    assert api.get(f"/tasks/{task['id']}", "market")["assignee"] == "market"
    assert kinds_for(api, a, "completeness_check") == [("claimed", "market")]


def test_task_page_shows_form_history_and_case_summary(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")

    page = client.get(f"/tasks/{task['id']}")
    assert page.status_code == 200
    html = page.text
    assert "<h1>材料完整性审查</h1>" in html
    assert 'name="completeness_decision"' in html and 'name="supplement_request"' in html
    assert '<option value="supplement">退回补正</option>' in html
    assert 'type="hidden" name="csrf_token"' in html
    # Case summary: number, applicant and status.
    assert "案件概况" in html
    assert f"<dd>{a}</dd>" in html
    assert "盈江县芒允茶业有限公司（审核中）" in html
    # History: the start by the enterprise.
    assert "办理记录" in html and "kind-started" in html
    assert client.get("/tasks/9999").status_code == 404


def test_invalid_submission_keeps_what_was_typed(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")
    token = csrf_of(client.get(f"/tasks/{task['id']}").text)

    response = client.post(f"/tasks/{task['id']}", data={
        "csrf_token": token, "completeness_decision": "supplement",
        "supplement_request": "", "completeness_comment": "申请表第三页缺少盖章"})
    assert response.status_code == 422
    html = response.text
    assert 'role="alert"' in html
    assert re.search(r'data-field="supplement_request".*?class="field-error"', html, re.S)
    assert 'aria-invalid="true"' in html
    assert "申请表第三页缺少盖章" in html
    assert re.search(r'<option value="supplement"\s+selected>', html)
    assert task_of(api, "market", a, "completeness_check")["state"] == "open"

    response = client.post(f"/tasks/{task['id']}", data={
        "csrf_token": token, "completeness_decision": "supplement",
        "supplement_request": "请补充盖章页", "completeness_comment": "申请表第三页缺少盖章"})
    assert response.status_code == 302
    assert task_of(api, "ent-a", a, "supplement")["group"] == "enterprise"


def test_post_without_csrf_token_is_a_400_page(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")

    for path, data in ((f"/tasks/{task['id']}/claim", {}),
                       (f"/tasks/{task['id']}", {"completeness_decision": "complete"}),
                       (f"/tasks/{task['id']}/claim", {"csrf_token": "forged"})):
        response = client.post(path, data=data)
        assert response.status_code == 400, (path, response.status_code)
        assert response.mimetype == "text/html"
        assert "表单已过期" in response.text
    assert task_of(api, "market", a, "completeness_check")["assignee"] is None
    assert task_of(api, "market", a, "completeness_check")["state"] == "open"


def test_html_typed_into_a_field_is_escaped_on_the_case_page(api, client):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")
    token = csrf_of(client.get(f"/tasks/{task['id']}").text)
    typed = '<script>alert("x")</script><b>补充</b>'
    response = client.post(f"/tasks/{task['id']}", data={
        "csrf_token": token, "completeness_decision": "supplement",
        "supplement_request": typed})
    assert response.status_code == 302

    page = client.get(f"/cases/{a}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<b>补充</b>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;补充&lt;/b&gt;" in page.text

    # The enterprise sees the request on its task page, escaped as well.
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    login(client, "ent-a")
    supplement = task_of(api, "ent-a", a, "supplement")
    html = client.get(f"/tasks/{supplement['id']}").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


OFFSITE = ["https://evil.example/", "//evil.example/",
           "/\\evil.example/"]


@pytest.mark.parametrize("target", OFFSITE)
def test_login_only_returns_to_a_page_of_this_site(client, target):
    page = client.get("/login")
    response = client.post("/login", query_string={"next": target},
                           data={"username": "market", "password": "demo",
                                 "csrf_token": csrf_of(page.text)})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


@pytest.mark.parametrize("target", OFFSITE)
def test_claim_form_only_returns_to_a_page_of_this_site(api, client, target):
    a = apply(api, "ent-a")["id"]
    task = task_of(api, "market", a, "completeness_check")
    login(client, "market")
    token = csrf_of(client.get("/inbox").text)

    response = client.post(f"/tasks/{task['id']}/claim",
                           data={"csrf_token": token, "next": target})
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]
    assert api.get(f"/tasks/{task['id']}", "market")["assignee"] == "market"
