"""Moving running cases to a new version: the dry run, the move in one step, what stays."""

from pathlib import Path

import pytest
from sqlalchemy import select

from engine import serialization
from engine.models import HumanTask, Instance, ProcessMigration, Timer
from web.extensions import db

VERSIONS = Path(__file__).resolve().parent / "bpmn" / "versions"
NOTE = {"escalation_note": "已办理"}


@pytest.fixture(autouse=True)
def fresh_spec_cache():
    """Specs are cached by version row id, and every test's database starts ids again."""
    serialization._specs.clear()
    yield
    serialization._specs.clear()


def review(version=1):
    return (VERSIONS / f"review_v{version}.bpmn").read_text(encoding="utf-8")


def deploy(api, text, reason):
    headers = {"Authorization": f"Bearer {api.token('office')}"}
    response = api.client.post(f"/api/v1/processes/permit_review/versions?reason={reason}",
                               data=text.encode("utf-8"), content_type="application/xml",
                               headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["version"]


def start(api):
    return api.post("/processes/permit_review/instances", "market", {"data": {}},
                    expect=201)["id"]


def open_task(api, user, instance_id, spec):
    items = api.get("/tasks?per_page=200", user)["items"]
    found = [t for t in items if t["instance_id"] == instance_id and t["task"] == spec]
    assert len(found) == 1, (spec, items)
    return found[0]


def finish(api, user, instance_id, spec):
    task = open_task(api, user, instance_id, spec)
    return api.post(f"/tasks/{task['id']}/complete", user, {"data": NOTE})


@pytest.fixture
def cases(api):
    """Four cases on version 1: two at intake (one claimed), one at review, one done."""
    deploy(api, review(1), "初版")
    at_intake, claimed, at_review, done = start(api), start(api), start(api), start(api)
    api.post(f"/tasks/{open_task(api, 'market', claimed, 'intake')['id']}/claim", "market")
    finish(api, "market", at_review, "intake")
    finish(api, "market", done, "intake")
    finish(api, "quality", done, "review")
    return {"at_intake": at_intake, "claimed": claimed, "at_review": at_review, "done": done}


def test_dry_run_lists_who_can_move_and_why_the_others_cannot(app, api, cases):
    deploy(api, review(2), "增加抽样检验")

    report = api.get("/processes/permit_review/versions/1/migration/2", "office")

    assert {c["instance_id"] for c in report["movable"]} == {cases["at_intake"],
                                                              cases["claimed"]}
    [blocked] = report["blocked"]
    assert blocked["instance_id"] == cases["at_review"]
    assert blocked["reasons"][0]["element_id"] == "intake"
    assert "受理" in blocked["reasons"][0]["message"]
    assert blocked["open_tasks"] == ["复核"]
    # A dry run changes nothing.
    with app.app_context():
        assert {i.version.version for i in db.session.scalars(select(Instance))} == {1}
        assert db.session.scalar(select(ProcessMigration.id)) is None


def test_apply_moves_every_movable_case_in_one_step(app, api, cases):
    deploy(api, review(2), "增加抽样检验")
    claimed_task = open_task(api, "market", cases["claimed"], "intake")

    api.post("/processes/permit_review/versions/1/migration/2", "office", {}, expect=422)
    result = api.post("/processes/permit_review/versions/1/migration/2", "office",
                      {"reason": "按新规定增加抽样检验"})

    assert sorted(result["moved"]) == sorted([cases["at_intake"], cases["claimed"]])
    assert [c["instance_id"] for c in result["blocked"]] == [cases["at_review"]]
    versions = {i: api.get(f"/instances/{i}", "office")["version"] for i in cases.values()}
    assert versions == {cases["at_intake"]: 2, cases["claimed"]: 2, cases["at_review"]: 1,
                        cases["done"]: 1}
    history = api.get(f"/instances/{cases['claimed']}", "office")["history"]
    assert history[-1]["kind"] == "migrated" and history[-1]["actor"] == "office"
    assert history[-1]["detail"]["to_version"] == 2
    assert history[-1]["detail"]["reason"] == "按新规定增加抽样检验"
    with app.app_context():
        [record] = db.session.scalars(select(ProcessMigration)).all()
        assert sorted(record.moved) == sorted(result["moved"])
        assert list(record.kept) == [str(cases["at_review"])]

    # The inbox row is the same task, still claimed; finishing it follows version 2.
    same = open_task(api, "market", cases["claimed"], "intake")
    assert same["id"] == claimed_task["id"] and same["assignee"] == "market"
    finish(api, "market", cases["claimed"], "intake")
    assert open_task(api, "quality", cases["claimed"], "sample_check")["group"] == "quality"
    finish(api, "quality", cases["claimed"], "sample_check")
    finish(api, "quality", cases["claimed"], "review")
    assert api.get(f"/instances/{cases['claimed']}", "office")["status"] == "completed"

    # The case that stayed keeps working on version 1.
    finish(api, "quality", cases["at_review"], "review")
    assert api.get(f"/instances/{cases['at_review']}", "office")["status"] == "completed"

    again = api.get("/processes/permit_review/versions/1/migration/2", "office")
    assert again["movable"] == [] and again["blocked"] == []


def test_a_changed_deadline_moves_a_case_past_the_task_and_keeps_its_timer(app, api, cases):
    later = review(1).replace('"P5D"', '"P7D"').replace('name="办结"', 'name="复核办结"')
    deploy(api, later, "复核期限延长")
    with app.app_context():
        timer_before = db.session.scalars(select(Timer).join(Instance).where(
            Instance.id == cases["at_review"])).one().due_at
    row_before = open_task(api, "quality", cases["at_review"], "review")

    report = api.get("/processes/permit_review/versions/1/migration/2", "office")
    assert report["blocked"] == []
    [moving] = [c for c in report["movable"] if c["instance_id"] == cases["at_review"]]
    assert "期限" in moving["notes"][0]["message"]

    api.post("/processes/permit_review/versions/1/migration/2", "office", {"reason": "新期限"})

    row = open_task(api, "quality", cases["at_review"], "review")
    assert row["id"] == row_before["id"]
    assert row["due_at"] > row_before["due_at"]
    with app.app_context():
        timer = db.session.scalars(select(Timer).join(Instance).where(
            Instance.id == cases["at_review"])).one()
        assert timer.due_at == timer_before
        rows = db.session.scalars(select(HumanTask).where(
            HumanTask.instance_id == cases["at_review"], HumanTask.state == "open")).all()
        assert [r.spec_name for r in rows] == ["review"]


def test_a_removed_open_task_keeps_the_case(api, cases):
    shorter = review(1).replace('targetRef="review"/>', 'targetRef="done"/>')
    shorter = shorter.replace("<bpmn:incoming>f_review</bpmn:incoming>",
                              "<bpmn:incoming>f_review</bpmn:incoming>\n"
                              "      <bpmn:incoming>f_intake</bpmn:incoming>")
    start_at = shorter.index('<bpmn:userTask id="review"')
    end_at = shorter.index('<bpmn:sequenceFlow id="f_review"')
    shorter = shorter[:start_at] + shorter[end_at:]
    shorter = shorter.replace('<bpmn:sequenceFlow id="f_review" sourceRef="review" '
                              'targetRef="done"/>', "")
    shorter = shorter.replace("<bpmn:incoming>f_review</bpmn:incoming>\n", "")
    for ref in ("review", "review_overdue", "escalate", "escalated"):
        shorter = shorter.replace(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>", "")
    deploy(api, shorter, "取消复核")

    report = api.get("/processes/permit_review/versions/1/migration/2", "office")
    blocked = {c["instance_id"]: c for c in report["blocked"]}
    assert cases["at_review"] in blocked
    codes = {r["code"] for r in blocked[cases["at_review"]]["reasons"]}
    assert "open_removed" in codes or "done_changed" in codes


def test_migration_is_for_the_office_only(api, cases):
    deploy(api, review(2), "增加抽样检验")
    api.get("/processes/permit_review/versions/1/migration/2", "market", expect=403)
    api.post("/processes/permit_review/versions/1/migration/2", "quality",
             {"reason": "x"}, expect=403)
    api.get("/processes/permit_review/versions/1/migration/1", "office", expect=400)
    api.get("/processes/permit_review/versions/1/migration/9", "office", expect=404)


def test_the_migration_page_shows_the_dry_run_and_applies_it(client, api, cases):
    import re

    deploy(api, review(2), "增加抽样检验")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "office", "password": "demo", "csrf_token": token})

    page = client.get("/admin/processes/permit_review/migrate?from=1&to=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-instance="{cases["at_review"]}"' in html and "可以迁移（2 件）" in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    done = client.post("/admin/processes/permit_review/migrate",
                       data={"from": 1, "to": 2, "reason": "页面迁移", "csrf_token": token})
    assert done.status_code == 302
    assert api.get(f"/instances/{cases['at_intake']}", "office")["version"] == 2
    case_page = client.get(f"/cases/{cases['at_intake']}").get_data(as_text=True)
    assert "迁移到新版本" in case_page
