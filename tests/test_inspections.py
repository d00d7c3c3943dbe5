"""Sampling inspections (抽检): the risk-weighted draw, results per dimension of the grade's
standard, the trace on the verify page, and what a failure sets off (deposit freeze,
protection task, expulsion on repeated failures), through the JSON API.

``ent-b`` (deposit 1,000,000 fen) holds a green-food licence for black cardamom; the
green grade's standard gets two dimensions here (外观, 农药残留).
"""

from datetime import datetime

import pytest
from sqlalchemy import select, update
from test_admission import complete, the_task
from test_complaints import DEPOSIT, deposit, enterprise_id, login, set_clock
from test_labels import batch_urls, code_of, issue, verify
from test_licences import grant

from engine import dashboard, inspections, licensing
from engine.inspections import Inspection
from engine.labels import Label, LabelBatch
from web.demo_royalty import add_royalty_payer
from web.extensions import db

PASSING = "外观 | 合格 | 果形饱满\n农药残留 | 合格 | 未检出"
FAILING = "外观 | 合格 | 果形饱满\n农药残留：不合格：毒死蜱 0.35 mg/kg"


@pytest.fixture
def licence(app, api):
    """ent-b's licence id, on a standard of two dimensions, in a quiet autumn week."""
    set_clock(app, datetime(2026, 11, 2, 2, 0))
    with app.app_context():
        licensing.add_dimension("green", "外观", "果形完整，无霉变")
        licensing.add_dimension("green", "农药残留", "符合 GB 2763 限量")
        db.session.commit()
    grant(api)
    return api.get("/licences", "ent-b")["items"][0]["id"]


def plan(api, licence_id, user="quality", expect=201, **extra):
    data = {"licence_id": licence_id, "target_kind": "base", "target_detail": "铜壁关乡草果基地",
            "selection": "manual", "plan_note": "年度例行抽检", **extra}
    return api.post("/processes/inspection/instances", user, {"data": data}, expect=expect)


def sample(api, case):
    complete(api, "quality", case, "sampling",
             {"lab_name": "云南省农产品质量安全检测中心", "sampled_on": "2026-11-03",
              "sample_refs": "YJCJ-2026-001\nYJCJ-2026-002", "sampling_note": ""})


def record(api, case, results=PASSING, conclusion="pass", report="YNJC-2026-1103",
           freeze_fen=None, expect=200):
    return complete(api, "quality", case, "results",
                    {"dimension_results": results, "lab_conclusion": conclusion,
                     "report_ref": report, "freeze_fen": freeze_fen, "result_note": ""},
                    expect=expect)


def inspected(api, licence_id, **kw):
    """A case planned, sampled and with its results recorded; returns the case id."""
    case = plan(api, licence_id)["id"]
    sample(api, case)
    record(api, case, **kw)
    return case


def inspection_of(api, case):
    found = [i for i in api.get("/inspections", "quality")["items"] if i["instance_id"] == case]
    assert len(found) == 1, case
    return found[0]


def protection_task(api, case):
    tasks = [t for t in api.get("/tasks?process=inspection&per_page=200", "protection")["items"]
             if t["instance_id"] == case]
    return tasks[0] if tasks else None


# -- the risk-weighted draw --------------------------------------------------------------------

def test_the_draw_favours_risky_licences_and_repeats_with_a_seed(app, client, api):
    set_clock(app, datetime(2026, 11, 2, 2, 0))
    with app.app_context():
        payers = [add_royalty_payer(f"ent-{n}", f"盈江县抽检测试企业{n}")[1].id
                  for n in range(4)]
        db.session.commit()
    risky = payers[2]
    batch = issue(api, risky, 5, user="market")
    # Three of its labels were found copied last month: 1 + 2 x 3 = 7.
    with app.app_context():
        first = db.session.get(LabelBatch, batch["id"]).first_serial
        db.session.execute(update(Label).where(Label.serial.in_(range(first, first + 3)))
                           .values(suspect_at=datetime(2026, 10, 12), suspect_reason="scan_count"))
        db.session.commit()

    weights = {w["licence_id"]: w for w in api.get("/inspections/risk", "quality")["items"]}
    assert {lid: weights[lid]["weight"] for lid in payers} == {
        payers[0]: 1, payers[1]: 1, risky: 7, payers[3]: 1}
    assert weights[risky]["suspect_labels"] == 3

    # Over 400 seeded draws of one licence the risky one is picked about 7 times in 10
    # (7 of 10 weight units, with ent-b's none: ent-b holds no licence yet).
    with app.app_context():
        picks = [inspections.draw(1, seed)[0]["licence"].id for seed in range(400)]
    assert picks.count(risky) > 240
    assert all(picks.count(lid) < 80 for lid in payers if lid != risky)

    again = api.get("/inspections/risk?draw=2&seed=autumn", "quality")
    assert again["drawn"] == api.get("/inspections/risk?draw=2&seed=autumn", "quality")["drawn"]
    assert len({d["licence_id"] for d in again["drawn"]}) == 2

    login(client, "quality")
    page = client.get("/inspections/?draw=1&seed=7").get_data(as_text=True)
    assert 'id="risk-weights"' in page and 'id="drawn"' in page
    assert "风险加权随机抽取" in page


def test_planning_from_the_draw_starts_the_case_in_the_inbox(app, client, api, licence):
    csrf = login(client, "quality")
    response = client.post("/inspections/new", data={
        "csrf_token": csrf, "licence_id": str(licence), "target_kind": "outlet",
        "target_detail": "盈江县城旗舰店", "selection": "risk_draw", "plan_note": "抽中"})
    assert response.status_code == 302
    item = api.get("/inspections", "quality")["items"][0]
    assert (item["selection"], item["target_kind"], item["risk_weight"]) == (
        "risk_draw", "outlet", 1)
    assert the_task(api, "quality", item["instance_id"], "sampling")


# -- results, trace, verify page ---------------------------------------------------------------

def test_the_results_task_shows_the_standard_to_fill_in(client, api, licence):
    case = plan(api, licence)["id"]
    sample(api, case)
    login(client, "quality")
    page = client.get(f"/tasks/{the_task(api, 'quality', case, 'results')['id']}").text
    assert "果形完整，无霉变" in page and "云南省农产品质量安全检测中心" in page
    assert "外观 | " in page and "农药残留 | " in page      # one line to fill per dimension


def test_a_passed_inspection_is_in_the_trace_on_the_verify_page(client, api, licence):
    code = code_of(batch_urls(client, api, issue(api, licence, 2)["id"])[0])
    case = inspected(api, licence)

    item = inspection_of(api, case)
    assert (item["status"], item["result"], item["report_ref"]) == (
        "passed", "pass", "YNJC-2026-1103")
    assert item["results"] == [
        {"dimension": "外观", "requirement": "果形完整，无霉变", "passed": True,
         "measured": "果形饱满"},
        {"dimension": "农药残留", "requirement": "符合 GB 2763 限量", "passed": True,
         "measured": "未检出"}]
    assert item["sample_refs"] == ["YJCJ-2026-001", "YJCJ-2026-002"]
    assert api.get(f"/instances/{case}", "quality")["status"] == "completed"

    trace = verify(client, code)["trace"]
    assert [(e["kind"], e["report_ref"]) for e in trace] == [("inspection", "YNJC-2026-1103")]
    assert "合格" in trace[0]["note"]
    assert position_frozen(api) == 0
    assert protection_task(api, case) is None


def position_frozen(api):
    return deposit(api, enterprise_id(api))["frozen_fen"]


def test_an_inspection_failure_freezes_the_deposit_and_raises_a_protection_task(
        client, api, licence):
    code = code_of(batch_urls(client, api, issue(api, licence, 2)["id"])[0])
    case = inspected(api, licence, results=FAILING, conclusion="fail", freeze_fen=150_000)

    ent_b = enterprise_id(api)
    body = deposit(api, ent_b)
    assert (body["balance_fen"], body["frozen_fen"], body["available_fen"]) == (
        DEPOSIT, 150_000, DEPOSIT - 150_000)
    dispute = body["disputes"][0]
    assert (dispute["source"], dispute["disputed_fen"], dispute["status"]) == (
        "inspection", 150_000, "frozen")
    item = inspection_of(api, case)
    assert item["dispute_instance_id"] == dispute["instance_id"]
    assert [r["passed"] for r in item["results"]] == [True, False]
    assert item["results"][1]["measured"] == "毒死蜱 0.35 mg/kg"

    task = protection_task(api, case)
    assert task is not None and task["group"] == "protection"
    form = {f["name"]: f for f in api.get(f"/tasks/{task['id']}", "protection")["form"]["fields"]}
    assert "protection_action" in form
    # The enterprise settles in the deposit case; the failure is in its trace.
    assert the_task(api, "ent-b", dispute["instance_id"], "settlement")
    trace = verify(client, code)["trace"]
    assert trace[-1]["kind"] == "inspection" and "不合格" in trace[-1]["note"]

    # One failure is not grounds for expulsion: protection asks the enterprise to rectify.
    refused = complete(api, "protection", case, "protection_review",
                       {"protection_action": "expel", "protection_note": "清退"}, expect=422)
    assert "protection_action" in refused["error"]["fields"]
    complete(api, "protection", case, "protection_review",
             {"protection_action": "rectify", "protection_note": "责令整改，三个月后复检"})
    assert inspection_of(api, case)["status"] == "closed"
    assert api.get(f"/instances/{case}", "protection")["status"] == "completed"


def test_repeated_failures_are_grounds_for_expulsion_and_start_the_case(api, licence):
    first = inspected(api, licence, results=FAILING, conclusion="fail")
    assert inspection_of(api, first)["expulsion_grounds"] is False
    # Without an amount on the form the rule's 200,000 fen is frozen.
    assert position_frozen(api) == 200_000
    complete(api, "protection", first, "protection_review",
             {"protection_action": "rectify", "protection_note": "限期整改"})

    second = inspected(api, licence, results=FAILING, conclusion="fail", report="YNJC-2026-1130")
    item = inspection_of(api, second)
    assert (item["failure_count"], item["expulsion_grounds"]) == (2, True)
    assert position_frozen(api) == 400_000
    complete(api, "protection", second, "protection_review",
             {"protection_action": "expel", "protection_note": "一年内两次抽检不合格"})

    expulsion_case = inspection_of(api, second)["expulsion_instance_id"]
    assert expulsion_case is not None
    started = api.get(f"/instances/{expulsion_case}", "leadership")
    assert started["process_key"] == "expulsion"
    assert the_task(api, "general", expulsion_case, "general_review")


def test_the_repeat_threshold_is_a_rule_the_office_edits(api, licence):
    api.call("PUT", "/rules/inspection.repeat_failure_count", "office", {"value": 1})
    case = inspected(api, licence, results=FAILING, conclusion="fail")
    assert inspection_of(api, case)["expulsion_grounds"] is True
    rules = {r["key"] for r in api.get("/rules", "quality")["items"]}
    assert {"inspection.freeze_fen", "inspection.repeat_failure_days",
            "inspection.complaint_weight"} <= rules


# -- bad input ---------------------------------------------------------------------------------

def test_bad_input_gets_field_errors_and_changes_nothing(api, licence):
    assert "licence_id" in plan(api, 999_999, expect=422)["error"]["fields"]
    assert "target_kind" in plan(api, licence, expect=422,
                                 target_kind="garden")["error"]["fields"]
    plan(api, licence, user="market", expect=403)
    plan(api, licence, user="ent-b", expect=403)

    case = plan(api, licence)["id"]
    body = complete(api, "quality", case, "sampling",
                    {"lab_name": "", "sampled_on": "yesterday", "sample_refs": ""}, expect=422)
    assert {"lab_name", "sampled_on", "sample_refs"} <= set(body["error"]["fields"])
    sample(api, case)

    for results, conclusion, field in [
            ("外观 | 合格", "pass", "dimension_results"),                  # a dimension missing
            (PASSING + "\n甜度 | 合格", "pass", "dimension_results"),      # not in the standard
            ("外观 | 也许\n农药残留 | 合格", "pass", "dimension_results"),  # no verdict
            (FAILING, "pass", "lab_conclusion"),                          # contradicts a fail
            (PASSING, "maybe", "lab_conclusion")]:
        body = record(api, case, results=results, conclusion=conclusion, expect=422)
        assert field in body["error"]["fields"], (results, body)
    body = record(api, case, results=FAILING, conclusion="fail", freeze_fen=DEPOSIT + 1,
                  expect=422)
    assert "freeze_fen" in body["error"]["fields"]
    body = record(api, case, report="", expect=422)
    assert "report_ref" in body["error"]["fields"]

    assert the_task(api, "quality", case, "results")
    item = inspection_of(api, case)
    assert (item["status"], item["results"]) == ("sampled", [])
    assert position_frozen(api) == 0


# -- the dashboard -----------------------------------------------------------------------------

def test_the_dashboard_counts_inspections_by_result(app, api, licence):
    inspected(api, licence)
    inspected(api, licence, results=FAILING, conclusion="fail")
    with app.app_context():
        chart = dashboard.chart("inspections")
        stored = db.session.scalars(select(Inspection.result)).all()
    assert chart.available
    counts = {row["result"]: row["inspections"] for row in chart.rows}
    assert counts == {"合格": stored.count("pass"), "不合格": stored.count("fail")} == {
        "合格": 1, "不合格": 1}
