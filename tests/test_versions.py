"""Versions of a process: upload, check, drafts, diff, simulation, forms, and who may."""

import io
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_admission import APPLICATION, complete, pay_and_confirm

from engine import accounts, clock, runtime, serialization
from engine.forms import FormRegistry
from engine.models import (
    DepositEntry,
    Enterprise,
    FormRevision,
    HistoryEntry,
    HumanTask,
    Instance,
    ProcessDraft,
    ProcessVersion,
    Timer,
)
from engine.workdays import add_working_days
from web.extensions import db

HERE = Path(__file__).resolve().parent
VERSIONS = HERE / "bpmn" / "versions"
BPMN_DIR = HERE.parent / "bpmn"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture(autouse=True)
def fresh_spec_cache():
    """Specs are cached by version row id, and every test's database starts ids again."""
    serialization._specs.clear()
    yield
    serialization._specs.clear()


def review(version=1):
    return (VERSIONS / f"review_v{version}.bpmn").read_bytes()


def admission_bpmn():
    return (BPMN_DIR / "admission_review.bpmn").read_text(encoding="utf-8")


def upload(client, api, key, xml, reason="测试", user="office", content_type="application/xml"):
    headers = {"Authorization": f"Bearer {api.token(user)}"}
    query = f"?reason={reason}" if reason else ""
    return client.post(f"/api/v1/processes/{key}/versions{query}", data=xml,
                       content_type=content_type, headers=headers)


def line_of(text, needle):
    return text[:text.index(needle)].count("\n") + 1


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


# -- uploads -------------------------------------------------------------------------------------

def test_upload_creates_a_version_and_identical_content_creates_none(client, api):
    first = upload(client, api, "permit_review", review(1))
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["version"] == 1 and first.get_json()["created"] is True

    again = upload(client, api, "permit_review", review(1), reason="再次上传")
    assert again.status_code == 200
    assert again.get_json()["version"] == 1 and again.get_json()["created"] is False

    second = upload(client, api, "permit_review", review(2), reason="增加抽样检验")
    assert second.status_code == 201
    assert second.get_json()["version"] == 2

    listed = {p["key"]: p for p in api.get("/processes", "office")["items"]}
    versions = listed["permit_review"]["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["reason"] == "增加抽样检验" and versions[0]["deployed_by"] == "office"


def test_uploading_the_deployed_admission_diagram_again_is_unchanged(client, api):
    body = upload(client, api, "admission_review", admission_bpmn().encode("utf-8"))
    assert body.status_code == 200, body.get_json()
    assert body.get_json()["created"] is False and body.get_json()["version"] == 1


def test_problems_answer_422_with_element_id_and_line(client, api):
    broken = review(1).decode().replace('"P10D"', "P10D").replace(
        'name="quality"', 'name="nobody"')
    response = upload(client, api, "permit_review", broken.encode())

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "deploy_refused"
    problems = {p["element_id"]: p for p in error["problems"]}
    assert problems["review_overdue"]["line"] == line_of(broken, 'id="review_overdue"')
    assert "P10D" in problems["review_overdue"]["message"]
    assert problems["lane_quality"]["line"] == line_of(broken, 'id="lane_quality"')
    assert all({"element_id", "line", "message"} <= set(p) for p in error["problems"])
    assert upload(client, api, "permit_review", review(1)).get_json()["version"] == 1


def test_malformed_xml_and_a_foreign_process_are_refused_with_a_line(client, api):
    malformed = upload(client, api, "permit_review", b"<bpmn:definitions>\n<oops")
    assert malformed.status_code == 422
    assert malformed.get_json()["error"]["problems"][0]["line"] is not None

    foreign = upload(client, api, "other_key", review(1))
    assert foreign.status_code == 422
    problem = foreign.get_json()["error"]["problems"][0]
    assert problem["code"] == "process_key_mismatch"
    assert problem["element_id"] == "permit_review"
    assert problem["line"] == line_of(review(1).decode(), 'id="permit_review"')


def test_multipart_upload_and_a_reason_is_required(client, api):
    headers = {"Authorization": f"Bearer {api.token('office')}"}
    missing = upload(client, api, "permit_review", review(1), reason=None)
    assert missing.status_code == 422
    assert "reason" in missing.get_json()["error"]["fields"]

    response = client.post("/api/v1/processes/permit_review/versions", headers=headers,
                           data={"reason": "表单上传",
                                 "file": (io.BytesIO(review(1)), "permit_review.bpmn")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["reason"] == "表单上传"


def test_only_the_office_revises_processes(client, api):
    assert upload(client, api, "permit_review", review(1), user="market").status_code == 403
    for path in ("/processes/admission_review/drafts",
                 "/processes/admission_review/versions/1/diff/1",
                 "/processes/admission_review/versions/1/migration/1", "/forms"):
        assert api.get(path, "quality", expect=403)["error"]["code"] == "forbidden"
    api.post("/processes/admission_review/drafts", "finance", {}, expect=403)
    assert client.post("/api/v1/processes/permit_review/versions", data=review(1),
                       content_type="application/xml").status_code == 401

    login(client, "market")
    assert client.get("/admin/processes").status_code == 403
    assert client.get("/admin/processes/admission_review/modeler").status_code == 403
    assert "流程管理" not in client.get("/inbox").get_data(as_text=True)


# -- running cases stay on their version ---------------------------------------------------------

def new_enterprise(app, username):
    with app.app_context():
        enterprise = Enterprise(name=f"测试企业 {username}", kind="processor",
                                status="registered", created_at=clock.now())
        db.session.add(enterprise)
        db.session.flush()
        accounts.create_user(username, "demo", enterprise.name, groups=["enterprise"],
                             enterprise_id=enterprise.id)
        db.session.commit()


def quality_task(api, instance_id):
    items = api.get("/tasks?per_page=200", "quality")["items"]
    return next(t for t in items if t["instance_id"] == instance_id
                and t["task"] == "quality_review")


def due_in_working_days(task, days):
    created = datetime.fromisoformat(task["created_at"].rstrip("Z"))
    return add_working_days(created, days)[0].isoformat() + "Z"


def test_running_cases_keep_their_version_and_new_cases_use_the_new_one(app, client, api):
    old = api.post("/processes/admission_review/instances", "ent-a",
                   {"data": APPLICATION}, expect=201)["id"]
    complete(api, "market", old, "completeness_check", {"completeness_decision": "complete"})

    longer = admission_bpmn().replace(
        '<spiffworkflow:property name="form" value="admission_quality_review"/>\n'
        '          <spiffworkflow:property name="due" value="5WD"/>',
        '<spiffworkflow:property name="form" value="admission_quality_review"/>\n'
        '          <spiffworkflow:property name="due" value="7WD"/>')
    assert longer != admission_bpmn()
    deployed = upload(client, api, "admission_review", longer.encode(), "质检期限延长")
    assert deployed.status_code == 201

    new_enterprise(app, "ent-new")
    new = api.post("/processes/admission_review/instances", "ent-new",
                   {"data": dict(APPLICATION, enterprise_name="新企业")}, expect=201)["id"]
    complete(api, "market", new, "completeness_check", {"completeness_decision": "complete"})

    assert api.get(f"/instances/{old}", "office")["version"] == 1
    assert api.get(f"/instances/{new}", "office")["version"] == 2
    old_task, new_task = quality_task(api, old), quality_task(api, new)
    assert old_task["due_at"] == due_in_working_days(old_task, 5)
    assert new_task["due_at"] == due_in_working_days(new_task, 7)

    # The old case keeps working on version 1 to the end.
    complete(api, "quality", old, "quality_review", {"quality_ok": True, "quality_comment": "好"})
    complete(api, "finance", old, "finance_review", {
        "finance_ok": True, "capital_verified_fen": 1, "finance_comment": "好"})
    complete(api, "market", old, "scoring", {"score_innovation": 20, "score_channels": 20,
                                             "score_experience": 20, "score_finance": 20})
    assert pay_and_confirm(api, old)["instance"]["status"] == "completed"


# -- drafts --------------------------------------------------------------------------------------

def test_a_draft_is_saved_checked_and_deployed_only_without_errors(app, api):
    files = {"permit_review.bpmn": review(1).decode().replace('"P10D"', "P10D")}
    draft = api.post("/processes/permit_review/drafts", "office", {"files": files}, expect=201)
    assert draft["check"]["errors"] == 1
    assert draft["check"]["problems"][0]["element_id"] == "review_overdue"

    refused = api.post(f"/drafts/{draft['id']}/deploy", "office",
                       {"reason": "试部署", "lock_version": draft["lock_version"]}, expect=422)
    assert refused["error"]["problems"][0]["element_id"] == "review_overdue"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessVersion).where(
            ProcessVersion.process_key == "permit_review")) == 0

    fixed = api.call("PUT", f"/drafts/{draft['id']}", "office",
                     json={"files": {"permit_review.bpmn": review(1).decode()},
                           "lock_version": draft["lock_version"]})
    assert fixed["check"]["ok"] is True
    stale = api.call("PUT", f"/drafts/{draft['id']}", "office",
                     json={"files": files, "lock_version": draft["lock_version"]}, expect=409)
    assert stale["error"]["code"] == "conflict"

    missing_reason = api.post(f"/drafts/{draft['id']}/deploy", "office", {}, expect=422)
    assert "reason" in missing_reason["error"]["fields"]
    deployed = api.post(f"/drafts/{draft['id']}/deploy", "office",
                        {"reason": "首次发布", "lock_version": fixed["lock_version"]}, expect=201)
    assert deployed["version"] == 1 and deployed["reason"] == "首次发布"
    assert api.get(f"/drafts/{draft['id']}", "office")["deployed_version"] == 1
    api.call("PUT", f"/drafts/{draft['id']}", "office", json={"files": files}, expect=409)


def test_a_draft_starts_from_the_latest_version_drawn_for_the_modeler(api):
    draft = api.post("/processes/admission_review/drafts", "office", {}, expect=201)
    assert draft["base_version"] == 1
    assert set(draft["files"]) == {"admission_review.bpmn", "admission_route.dmn",
                                   "admission_deposit.dmn"}
    assert "bpmndi:BPMNShape" in draft["files"]["admission_review.bpmn"]
    assert draft["check"]["ok"] is True

    # A drawing only: no element is added or removed. SpiffWorkflow orders a gateway's
    # flows by the height of their targets, so the diff may show new orders, nothing else.
    deployed = api.post(f"/drafts/{draft['id']}/deploy", "office", {"reason": "加入图形"},
                        expect=201)
    diff = api.get(f"/processes/admission_review/versions/1/diff/{deployed['version']}",
                   "office")
    assert diff["added"] == diff["removed"] == []
    assert all(c["order_only"] for e in diff["changed"] for c in e["changes"]), diff["changed"]
    states = {f["file"]: f["state"] for f in diff["files"]}
    assert states["admission_review.bpmn"] == "layout"
    assert states["admission_route.dmn"] == "same"


# -- diff ----------------------------------------------------------------------------------------

def test_the_diff_lists_added_removed_and_changed_elements(client, api):
    upload(client, api, "permit_review", review(1))
    v2 = review(2).decode().replace('"P5D"', '"P7D"')
    v2 = v2.replace('<bpmn:flowNodeRef>escalate</bpmn:flowNodeRef>', '')
    upload(client, api, "permit_review", v2.encode(), reason="抽样检验")

    diff = api.get("/processes/permit_review/versions/1/diff/2", "office")
    assert [e["element_id"] for e in diff["added"]] == ["sample_check"]
    changed = {e["element_id"]: e for e in diff["changed"]}
    assert set(changed) >= {"intake", "review", "escalate"}
    review_changes = {c["attribute"]: c for c in changed["review"]["changes"]}
    assert "P5D" in review_changes["extensions"]["before"]
    assert "P7D" in review_changes["extensions"]["after"]
    assert changed["intake"]["changes"][0]["after"] == '["sample_check"]'

    back = api.get("/processes/permit_review/versions/2/diff/1", "office")
    assert [e["element_id"] for e in back["removed"]] == ["sample_check"]

    login(client, "office")
    page = client.get("/admin/processes/permit_review/diff?a=1&b=2")
    assert page.status_code == 200
    assert "sample_check" in page.get_data(as_text=True)


# -- simulation ----------------------------------------------------------------------------------

def test_a_simulation_past_a_deadline_shows_the_escalation_and_writes_nothing(app, api):
    with app.app_context():
        before = {model.__name__: count(model) for model in (
            Instance, HumanTask, HistoryEntry, Timer, DepositEntry, ProcessDraft)}
        statuses = dict(db.session.execute(select(Enterprise.id, Enterprise.status)).all())

    result = api.post("/processes/admission_review/versions/1/simulate", "office", {
        "data": APPLICATION,
        "actions": [{"complete": "completeness_check",
                     "data": {"completeness_decision": "complete"}},
                    {"advance": "P3D"},
                    {"advance": "P10D"}]})

    assert result["error"] is None
    path = [step["element_id"] for step in result["path"]]
    assert path[:3] == ["start", "register_application", "completeness_check"]
    assert "quality_overdue" in path and "finance_overdue" in path
    open_tasks = {t["element_id"]: t for t in result["open_tasks"]}
    assert set(open_tasks) == {"quality_review", "finance_review", "escalate_quality",
                               "escalate_finance"}
    assert open_tasks["quality_review"]["overdue"] is True
    assert open_tasks["escalate_quality"]["lane"] == "leadership"
    assert [s["operation"] for s in result["services"]] == ["open_application"]
    assert "quality_review" in result["markers"]["active"]

    with app.app_context():
        assert {model.__name__: count(model) for model in (
            Instance, HumanTask, HistoryEntry, Timer, DepositEntry, ProcessDraft)} == before
        assert dict(db.session.execute(select(Enterprise.id, Enterprise.status)).all()) == (
            statuses)
    assert api.get("/tasks", "leadership")["total"] == 0


def test_a_simulation_reports_bad_task_data_and_a_draft_with_errors(api):
    result = api.post("/processes/admission_review/versions/1/simulate", "office", {
        "data": APPLICATION,
        "actions": [{"complete": "completeness_check", "data": {"completeness_decision": 7}}]})
    assert result["error"]["action_index"] == 0
    assert "completeness_decision" in result["error"]["fields"]
    assert [t["element_id"] for t in result["open_tasks"]] == ["completeness_check"]

    broken = {"permit_review.bpmn": review(1).decode().replace('"P10D"', "P10D")}
    draft = api.post("/processes/permit_review/drafts", "office", {"files": broken}, expect=201)
    refused = api.post(f"/drafts/{draft['id']}/simulate", "office", {"data": {}}, expect=422)
    assert refused["error"]["problems"][0]["element_id"] == "review_overdue"


# -- forms ---------------------------------------------------------------------------------------

@pytest.fixture
def forms_dir(app, tmp_path):
    """A private copy of forms/ for tests that save forms."""
    directory = tmp_path / "forms"
    shutil.copytree(app.config["FORMS_DIR"], directory)
    registry = FormRegistry(directory)
    app.extensions["brand_forms"] = registry
    runtime.configure(registry, app.config["SCRIPT_TIME_LIMIT"])
    return directory


def test_a_form_is_validated_before_it_is_written(app, api, forms_dir):
    path = forms_dir / "overdue_escalation.json"
    original = path.read_text(encoding="utf-8")
    text = original.replace('"max_length": 2000}', '"max_length": 2000},\n'
                            '    {"name": "escalation_level", "type": "integer", '
                            '"label": "督办级别", "min": 1, "max": 3}')
    api.call("PUT", "/forms/overdue_escalation", "office",
             json={"text": text, "reason": "增加督办级别"})
    assert "escalation_level" in path.read_text(encoding="utf-8")
    assert app.extensions["brand_forms"].field_names("overdue_escalation")[-1] == (
        "escalation_level")
    with app.app_context():
        assert db.session.scalar(select(FormRevision.reason)) == "增加督办级别"

    bad = api.call("PUT", "/forms/overdue_escalation", "office",
                   json={"text": '{"name": "overdue_escalation", "fields": [', "reason": "x"},
                   expect=422)
    assert "definition" in bad["error"]["fields"]
    wrong_type = text.replace('"type": "integer"', '"type": "number"')
    api.call("PUT", "/forms/overdue_escalation", "office",
             json={"text": wrong_type, "reason": "x"}, expect=422)
    assert "escalation_level" in path.read_text(encoding="utf-8")
    assert '"number"' not in path.read_text(encoding="utf-8")


def test_a_form_change_that_breaks_a_version_in_use_is_refused(app, api, forms_dir):
    path = forms_dir / "admission_completeness.json"
    original = path.read_text(encoding="utf-8")
    definition = json.loads(original)
    definition["fields"] = [dict(f, required_when=None) for f in definition["fields"]
                            if f["name"] != "completeness_decision"]
    for field in definition["fields"]:
        del field["required_when"]

    refused = api.call("PUT", "/forms/admission_completeness", "office",
                       json={"text": json.dumps(definition, ensure_ascii=False),
                             "reason": "删除字段"}, expect=422)
    problems = refused["error"]["problems"]
    assert {p["element_id"] for p in problems} >= {"f_needs_supplement", "f_not_accepted"}
    assert all(p["line"] for p in problems)
    assert all(p["filename"].startswith("admission_review v1") for p in problems)
    assert path.read_text(encoding="utf-8") == original


# -- pages ---------------------------------------------------------------------------------------

def login(client, username):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": username, "password": "demo",
                                           "csrf_token": token})
    assert response.status_code in (302, 303), response.status_code


def test_the_office_pages_render(client, api):
    upload(client, api, "permit_review", review(1))
    upload(client, api, "permit_review", review(2), reason="抽样检验")
    login(client, "office")

    listing = client.get("/admin/processes").get_data(as_text=True)
    assert "admission_review" in listing and "抽样检验" in listing
    modeler = client.get("/admin/processes/admission_review/modeler")
    assert modeler.status_code == 200
    assert "bpmn-modeler.production.min.js" in modeler.get_data(as_text=True)
    for path in ("/admin/processes/permit_review/diff", "/admin/processes/permit_review/migrate",
                 "/admin/processes/admission_review/simulate",
                 "/admin/forms/overdue_escalation", "/admin/forms/brand_new_form"):
        assert client.get(path).status_code == 200, path
    assert client.get("/admin/forms/Bad-Name").status_code == 404
    assert "流程管理" in client.get("/inbox").get_data(as_text=True)


def test_the_modeler_saves_a_draft_with_the_session_and_csrf_token(client):
    login(client, "office")
    page = client.get("/admin/processes/permit_review/modeler")
    assert page.status_code == 404

    page = client.get("/admin/processes/admission_review/modeler").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    files = {"admission_review.bpmn": admission_bpmn()}
    without = client.post("/api/v1/processes/admission_review/drafts", json={"files": files})
    assert without.status_code == 400
    saved = client.post("/api/v1/processes/admission_review/drafts", json={"files": files},
                        headers={"X-CSRFToken": token})
    assert saved.status_code == 201, saved.get_json()


def test_a_case_page_embeds_its_diagram_with_states(client, api):
    instance_id = api.post("/processes/admission_review/instances", "ent-a",
                           {"data": APPLICATION}, expect=201)["id"]
    body = api.get(f"/instances/{instance_id}/diagram", "office")
    assert body["active"] == ["completeness_check"]
    assert {"start", "register_application"} <= set(body["completed"])
    assert "bpmndi:BPMNShape" in body["xml"]
    api.get(f"/instances/{instance_id}/diagram", "quality", expect=403)

    login(client, "office")
    page = client.get(f"/cases/{instance_id}").get_data(as_text=True)
    assert f"/api/v1/instances/{instance_id}/diagram" in page
    assert "bpmn-navigated-viewer.production.min.js" in page


def test_redeploying_bpmn_dir_keeps_the_version_the_office_deployed(app, client, api):
    from web.cli import deploy_bpmn_dir

    longer = admission_bpmn().replace('value="5WD"', 'value="6WD"')
    assert upload(client, api, "admission_review", longer.encode()).status_code == 201
    with app.app_context():
        results = {name: (v.version, created) for name, v, created, _p in deploy_bpmn_dir(app)}
    assert results["admission_review.bpmn"] == (2, False)
    listed = {p["key"]: p for p in api.get("/processes", "office")["items"]}
    assert listed["admission_review"]["latest_version"] == 2


CORPUS = HERE.parents[1] / "shared" / "cases" / "bpmn-corpus"


@pytest.mark.parametrize("path", sorted(CORPUS.rglob("*.bpmn")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_upload_is_a_version_or_a_located_report(client, api, path):
    data = path.read_bytes()
    found = re.search(rb'<(?:\w+:)?process\b[^>]*\bid="([^"]+)"', data)
    key = found.group(1).decode() if found else "corpus_upload"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}", key):
        key = "corpus_upload"

    response = upload(client, api, key, data, reason="corpus")

    assert response.status_code in (200, 201, 422), (response.status_code, response.get_json())
    if response.status_code == 422:
        problems = response.get_json()["error"]["problems"]
        assert problems
        for problem in problems:
            # Every problem names its line; a model problem also its element (broken or
            # entity-laden XML has no element to name, only the line where it breaks).
            assert problem["line"] is not None, problem
            assert problem["element_id"] or problem["code"].startswith("xml_"), problem
            assert problem["message"]


def test_checking_a_new_process_answers_like_its_first_upload(client, api):
    from engine.drafts import new_process_files

    xml = new_process_files("brand_new", "新流程")["brand_new.bpmn"]
    checked = api.post("/processes/brand_new/check", "office",
                       {"files": {"brand_new.bpmn": xml}})
    assert checked["ok"] is True
    assert upload(client, api, "brand_new", xml.encode()).status_code == 201

    # A key no process could have is refused by both alike.
    bad = api.post("/processes/-bad-/check", "office", {"files": {"x.bpmn": xml}}, expect=400)
    assert bad["error"]["message"] == "流程标识无效"
    assert upload(client, api, "-bad-", xml.encode()).status_code == 400
