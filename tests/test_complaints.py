"""Complaints and the deposit disputes they cause, end to end through the JSON API.

The clock is set to fixed dates so that deadlines fall on known working days. The
demo enterprise ``ent-b`` is admitted with a 1,000,000 fen (CNY 10,000) deposit.
"""

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from test_admission import complete, the_task

from engine import clock, ledger, rules
from engine.models import ClockOffset, User
from web.extensions import db

DEPOSIT = 1_000_000
AWARD = 300_000

COMPLAINT = {
    "complainant_name": "王丽",
    "complainant_phone": "13912345678",
    "product": "black_cardamom",
    "purchase_place": "盈江县城农贸市场",
    "purchased_on": "2026-09-20",
    "description": "买到的草果发霉，食用后腹泻就医。",
    "claimed_fen": 350_000,
}


def set_clock(app, when):
    """Point the virtual clock at ``when`` (naive UTC), forwards or backwards."""
    with app.app_context():
        row = db.session.get(ClockOffset, 1)
        if row is None:
            row = ClockOffset(id=1, seconds=0)
            db.session.add(row)
        real = datetime.now(UTC).replace(tzinfo=None)
        row.seconds = int((when - real).total_seconds())
        db.session.commit()
        clock.load_offset()


def file_online(client, data=None, expect=201):
    response = client.post("/api/v1/complaints", json=data or COMPLAINT)
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def status_of(client, reference):
    response = client.get(f"/api/v1/complaints/{reference}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def staff_view(api, reference, user="protection"):
    found = [c for c in api.get("/complaints", user)["items"] if c["reference"] == reference]
    assert len(found) == 1, reference
    return found[0]


def enterprise_id(api, username="ent-b"):
    return api.get("/enterprises", username)["items"][0]["id"]


def deposit(api, enterprise, user="finance"):
    return api.get(f"/enterprises/{enterprise}/deposit", user)


def position(body):
    return (body["balance_fen"], body["frozen_fen"], body["available_fen"], body["advanced_fen"])


def accept(api, case, enterprise):
    complete(api, "protection", case, "acceptance",
             {"accept_decision": "accept", "enterprise_id": enterprise,
              "acceptance_note": "属于受理范围"})


def adjudicate_at_fault(api, case, amount=AWARD, expect=200):
    return complete(api, "protection", case, "adjudication",
                    {"verdict": "at_fault", "awarded_fen": amount,
                     "adjudication_note": "抽检霉变超标，经营者有责任。"}, expect=expect)


def through_investigation(api, case):
    complete(api, "protection", case, "investigation",
              {"findings": "投诉属实，同批次留样霉变。", "sampling_needed": True,
               "sampling_request": "抽检同批次草果"})
    complete(api, "quality", case, "sampling",
             {"sample_result": "fail", "report_number": "YJQC-2026-0118",
              "sampling_note": "黄曲霉毒素超标"})


def at_fault_complaint(client, api, enterprise):
    """A complaint filed online, accepted, investigated and adjudicated at fault."""
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, enterprise)
    through_investigation(api, case)
    adjudicate_at_fault(api, case)
    return reference, case


def dispute_case(api, enterprise):
    disputes = deposit(api, enterprise)["disputes"]
    assert disputes, "no dispute case was started"
    return disputes[0]


@pytest.fixture
def autumn(app):
    """Monday 2 November 2026, 10:00 in Yingjiang: no holiday within the next weeks."""
    set_clock(app, datetime(2026, 11, 2, 2, 0))


# -- filing and following ----------------------------------------------------------------------

def test_consumer_files_without_an_account_and_follows_by_reference(client, api, autumn):
    filed = file_online(client)

    reference = filed["reference"]
    assert re.fullmatch(r"YJ(-[A-HJ-NP-Z2-9]{4}){4}", reference)
    assert filed["status"] == "filed" and filed["status_text"] == "已登记，待受理"
    assert filed["accept_by"] == "2026-11-11T15:59:59Z"
    assert filed["accept_by_provisional"] is False
    assert filed["channel"] == "web"

    public = status_of(client, reference.lower().replace("-", " "))
    assert public["reference"] == reference
    assert "complainant_phone" not in public and "description" not in public
    page = client.get(f"/complaints/{reference}")
    assert page.status_code == 200
    assert reference in page.text and "13912345678" not in page.text

    staff = staff_view(api, reference)
    assert staff["complainant_phone"] == "13912345678"
    task = the_task(api, "protection", staff["instance_id"], "acceptance")
    assert task["due_at"] == "2026-11-11T15:59:59Z"


def test_unknown_or_malformed_references_are_not_found(client, autumn):
    file_online(client)
    for reference in ("YJ-AAAA-AAAA-AAAA-AAAA", "1", "YJ-0000-0000-0000-0000"):
        response = client.get(f"/api/v1/complaints/{reference}")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_the_verify_page_link_carries_the_label_code(client):
    page = client.get("/complaints/new?code=ABCDEFG")
    assert page.status_code == 200
    assert 'value="ABCDEFG"' in page.text


def test_filing_on_the_page_shows_the_reference(client, autumn):
    page = client.get("/complaints/new")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = dict(COMPLAINT, claimed_fen="3500.00", csrf_token=token)
    response = client.post("/complaints/new", data=form)
    assert response.status_code == 302
    status_page = client.get(response.headers["Location"])
    assert "请记下投诉编号" in status_page.text and "已登记，待受理" in status_page.text


def test_invalid_filing_gives_field_errors(client):
    body = file_online(client, dict(COMPLAINT, product="wine", complainant_name=""), expect=422)
    assert {"product", "complainant_name"} <= set(body["error"]["fields"])


def test_filing_is_rate_limited_by_a_rule(app, client, autumn):
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        rules.set_rule("complaint.filings_per_hour", 2, office, reason="测试")
        db.session.commit()
    file_online(client)
    file_online(client)
    body = file_online(client, expect=429)
    assert body["error"]["message"] == "请求过于频繁"


def test_hotline_logs_a_complaint(api, autumn):
    started = api.post("/processes/complaint/instances", "service", {"data": COMPLAINT},
                       expect=201)
    assert started["title"].startswith("消费投诉 YJ-")
    complaint = [c for c in api.get("/complaints", "service")["items"]
                 if c["instance_id"] == started["id"]][0]
    assert complaint["channel"] == "hotline"
    api.post("/processes/complaint/instances", "market", {"data": COMPLAINT}, expect=403)


def test_rejected_complaint_tells_the_complainant_why(client, api, autumn):
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    complete(api, "protection", case, "acceptance",
             {"accept_decision": "reject", "rejection_reason": "购买凭证缺失，无法核实。"})
    public = status_of(client, reference)
    assert public["status"] == "rejected"
    assert public["outcome_note"] == "购买凭证缺失，无法核实。"
    assert api.get(f"/instances/{case}", "office")["status"] == "completed"


# -- paid from the deposit, then settled or not ------------------------------------------------

def test_at_fault_is_paid_from_the_deposit_and_recovered(client, api, autumn):
    ent_b = enterprise_id(api)
    assert position(deposit(api, ent_b)) == (DEPOSIT, 0, DEPOSIT, 0)

    reference, case = at_fault_complaint(client, api, ent_b)

    public = status_of(client, reference)
    assert public["status"] == "at_fault" and public["awarded_fen"] == AWARD
    body = deposit(api, ent_b)
    dispute = dispute_case(api, ent_b)
    assert [(e["kind"], e["amount_fen"], e["instance_id"], e["approved_by"])
            for e in body["entries"]] == [
        ("paid_in", DEPOSIT, None, "finance"),
        ("paid_out", AWARD, case, "protection"),
        ("frozen", AWARD, dispute["instance_id"], "protection")]
    # Nothing was deducted yet: the advance is owed back and a like amount is frozen.
    assert position(body) == (1_000_000, 300_000, 700_000, 300_000)
    assert body["held_fen"] == 700_000
    assert dispute["status"] == "frozen" and dispute["advance_fen"] == AWARD
    assert dispute["settle_by"] == "2026-11-16T15:59:59Z"
    # The enterprise learns of the dispute, not the complainant or the tracking reference.
    seen = json.dumps([deposit(api, ent_b, "ent-b"),
                       api.get(f"/instances/{dispute['instance_id']}", "ent-b")],
                      ensure_ascii=False)
    for secret in (reference, reference.replace("-", ""), "13912345678", "王丽"):
        assert secret not in seen

    settle = the_task(api, "ent-b", dispute["instance_id"], "settlement")
    assert settle["due_at"] == "2026-11-16T15:59:59Z"
    complete(api, "ent-b", dispute["instance_id"], "settlement",
             {"settlement_reference": "ABC-2026-1102", "settled_on": "2026-11-02"})
    complete(api, "finance", dispute["instance_id"], "settlement_check",
             {"settlement_received": True, "settlement_comment": "垫付款已追回"})

    body = deposit(api, ent_b)
    assert [(e["kind"], e["amount_fen"]) for e in body["entries"][3:]] == [
        ("recovered", AWARD), ("unfrozen", AWARD)]
    assert [e["approved_by"] for e in body["entries"][3:]] == ["finance", "finance"]
    assert position(body) == (1_000_000, 0, 1_000_000, 0)
    assert body["shortfall_fen"] == 0
    assert dispute_case(api, ent_b)["status"] == "settled"
    assert api.get(f"/instances/{dispute['instance_id']}", "ent-b")["status"] == "completed"
    with api.client.application.app_context():
        assert ledger.reconcile().ok


def test_not_settled_is_deducted_topped_up_short_and_escalated(client, api, autumn):
    ent_b = enterprise_id(api)
    _reference, _case = at_fault_complaint(client, api, ent_b)
    dispute = dispute_case(api, ent_b)
    freeze_case = dispute["instance_id"]

    # Before the settlement deadline (16 November) nothing happens.
    assert api.post("/clock/advance", "it", {"duration": "P7D"})["fired"] == 0
    assert position(deposit(api, ent_b)) == (1_000_000, 300_000, 700_000, 300_000)

    # Past it: the frozen amount repays the advance for good; a top-up is demanded.
    assert api.post("/clock/advance", "it", {"duration": "P8D"})["fired"] == 1
    body = deposit(api, ent_b)
    deducted = body["entries"][3]
    assert (deducted["kind"], deducted["amount_fen"], deducted["instance_id"],
            deducted["approved_by"]) == ("deducted", AWARD, freeze_case, None)
    assert position(body) == (700_000, 0, 700_000, 0)
    assert body["shortfall_fen"] == 300_000
    dispute = dispute_case(api, ent_b)
    assert dispute["status"] == "deducted" and dispute["top_up_fen"] == 300_000
    # Fifteen working days from Tuesday 17 November.
    assert dispute["top_up_by"] == "2026-12-08T15:59:59Z"
    assert the_task(api, "ent-b", freeze_case, "top_up")["due_at"] == "2026-12-08T15:59:59Z"

    # A part payment arrives; the rest is still demanded by the same deadline.
    complete(api, "ent-b", freeze_case, "top_up",
             {"top_up_paid_fen": 100_000, "top_up_reference": "TOPUP-1",
              "top_up_paid_on": "2026-11-17"})
    complete(api, "finance", freeze_case, "top_up_check",
             {"top_up_received": True, "top_up_received_fen": 100_000})
    body = deposit(api, ent_b)
    assert (body["entries"][-1]["kind"], body["entries"][-1]["amount_fen"]) == (
        "topped_up", 100_000)
    assert position(body) == (800_000, 0, 800_000, 0)
    assert body["shortfall_fen"] == 200_000
    assert the_task(api, "ent-b", freeze_case, "top_up")

    # The top-up deadline passes: leadership must decide.
    assert api.post("/clock/advance", "it", {"duration": "P22D"})["fired"] == 1
    review = the_task(api, "leadership", freeze_case, "top_up_review")
    assert review["name"] == "督办：逾期未补足保证金"
    dispute = dispute_case(api, ent_b)
    assert dispute["status"] == "overdue" and dispute["escalated"]
    assert dispute["escalation"] == "top_up_overdue"
    assert [t["task"] for t in api.get(f"/instances/{freeze_case}", "ent-b")["open_tasks"]] == [
        "top_up_review"]

    complete(api, "leadership", freeze_case, "top_up_review",
             {"dispute_decision": "expel", "dispute_decision_note": "拒不补足，启动清退。"})
    dispute = dispute_case(api, ent_b)
    assert dispute["decision"] == "expel"
    assert api.get(f"/instances/{freeze_case}", "office")["status"] == "completed"

    # The decision started the expulsion in the same step: general reviews it first.
    history = api.get(f"/instances/{freeze_case}", "office")["history"]
    started = [h["detail"] for h in history if h["detail"].get("effect") == "expulsion_started"]
    assert len(started) == 1
    expulsion_case = started[0]["expulsion_case"]
    expulsion = api.get(f"/instances/{expulsion_case}", "leadership")
    assert (expulsion["process_key"], expulsion["status"]) == ("expulsion", "running")
    assert [t["task"] for t in expulsion["open_tasks"]] == ["general_review"]
    review = the_task(api, "general", expulsion_case, "general_review")
    assert review["enterprise_id"] == ent_b
    with api.client.application.app_context():
        from engine.expulsion import Expulsion

        record = db.session.scalars(select(Expulsion)).one()
        assert (record.enterprise_id, record.grounds, record.status) == (
            ent_b, "unpaid_dues", "review")
        assert f"保证金纠纷（案件 {freeze_case}）" in record.evidence
        assert "保证金尚缺 200000 分" in record.evidence
    assert position(deposit(api, ent_b)) == (800_000, 0, 800_000, 0)
    with api.client.application.app_context():
        assert ledger.reconcile().ok


def test_an_advance_larger_than_the_deposit_is_refused_on_the_amount(client, api, autumn):
    ent_b = enterprise_id(api)
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, ent_b)
    through_investigation(api, case)

    body = adjudicate_at_fault(api, case, amount=DEPOSIT + 1, expect=422)
    assert "awarded_fen" in body["error"]["fields"]
    assert len(deposit(api, ent_b)["entries"]) == 1
    assert the_task(api, "protection", case, "adjudication")

    adjudicate_at_fault(api, case, amount=DEPOSIT)
    assert position(deposit(api, ent_b)) == (DEPOSIT, DEPOSIT, 0, DEPOSIT)


def test_inspection_failure_not_settled_is_paid_out_and_deducted(api, autumn):
    ent_b = enterprise_id(api)
    started = api.post("/processes/deposit_freeze/instances", "quality",
                       {"data": {"enterprise_id": ent_b, "disputed_fen": 120_000,
                                 "dispute_reason": "抽检不合格，需赔付受影响的消费者"}},
                       expect=201)
    assert started["enterprise_id"] == ent_b
    assert position(deposit(api, ent_b)) == (1_000_000, 120_000, 880_000, 0)

    api.post("/clock/advance", "it", {"duration": "P15D"})
    body = deposit(api, ent_b)
    assert [(e["kind"], e["amount_fen"]) for e in body["entries"][1:]] == [
        ("frozen", 120_000), ("paid_out", 120_000), ("deducted", 120_000)]
    assert position(body) == (880_000, 0, 880_000, 0)
    assert body["shortfall_fen"] == 120_000


def test_three_disputes_within_a_year_escalate(app, api, autumn):
    ent_b = enterprise_id(api)

    def dispute():
        return api.post("/processes/deposit_freeze/instances", "quality",
                        {"data": {"enterprise_id": ent_b, "disputed_fen": 50_000,
                                  "dispute_reason": "抽检不合格"}}, expect=201)["id"]

    first, second = dispute(), dispute()
    reviews = [t for t in api.get("/tasks", "leadership")["items"] if t["task"] == "repeat_review"]
    assert reviews == []
    third = dispute()
    review = the_task(api, "leadership", third, "repeat_review")
    assert review["name"] == "督办：一年内多次纠纷"
    assert {d["instance_id"]: d["escalation"] for d in deposit(api, ent_b)["disputes"]} == {
        first: None, second: None, third: "repeat"}

    # The count is a rule the office edits.
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        rules.set_rule("deposit.repeat_dispute_count", 5, office, reason="试运营放宽")
        db.session.commit()
    fourth = dispute()
    assert [t for t in api.get(f"/instances/{fourth}", "office")["open_tasks"]
            if t["task"] == "repeat_review"] == []


def test_staff_cannot_start_a_freeze_for_an_unadmitted_enterprise(api):
    ent_a = enterprise_id(api, "ent-a")
    body = api.post("/processes/deposit_freeze/instances", "quality",
                    {"data": {"enterprise_id": ent_a, "disputed_fen": 1,
                              "dispute_reason": "测试"}}, expect=422)
    assert "enterprise_id" in body["error"]["fields"]


# -- deadlines and escalation ------------------------------------------------------------------

def test_acceptance_deadline_counts_national_day_and_its_working_saturday(client, api, app):
    set_clock(app, datetime(2026, 9, 28, 2, 0))     # Monday 28 September, 10:00
    filed = file_online(client)
    # 29, 30 September; 1-7 October off; 8, 9, 10 (Saturday, worked), 12, 13 October.
    assert filed["accept_by"] == "2026-10-13T15:59:59Z"
    assert filed["accept_by_provisional"] is False


def test_acceptance_deadline_in_a_year_without_data_is_provisional(client, api, app):
    from datetime import date

    from engine import workdays

    assert not workdays.has_official_data(2027), "chinesecalendar now knows 2027: pick 2028"
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        workdays.set_calendar_day(date(2027, 1, 1), False, "元旦", office)
        db.session.commit()
    set_clock(app, datetime(2026, 12, 28, 2, 0))    # Monday 28 December, 10:00
    filed = file_online(client)
    # 29, 30, 31 December; 1 January off (office table); 4, 5, 6, 7 January.
    assert filed["accept_by"] == "2027-01-07T15:59:59Z"
    assert filed["accept_by_provisional"] is True
    page = client.get(f"/complaints/{filed['reference']}")
    assert "暂定" in page.text


def test_overdue_complaint_appears_in_the_leadership_inbox_as_escalated(client, api, app):
    set_clock(app, datetime(2026, 9, 28, 2, 0))
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]

    assert api.post("/clock/advance", "it", {"duration": "P10D"})["fired"] == 0
    assert api.get("/tasks?overdue=true", "protection")["total"] == 0
    assert api.get("/complaints?escalated=true", "leadership")["items"] == []

    assert api.post("/clock/advance", "it", {"duration": "P6D"})["fired"] == 1

    escalated = the_task(api, "leadership", case, "acceptance_supervision")
    assert escalated["name"] == "督办：投诉受理超期"
    assert escalated["process_key"] == "complaint"
    assert [c["reference"] for c in api.get("/complaints?escalated=true", "leadership")
            ["items"]] == [reference]
    assert status_of(client, reference)["escalated"] is True
    overdue = api.get("/tasks?overdue=true", "protection")["items"]
    assert [t["task"] for t in overdue] == ["acceptance"]

    # The decision itself stays with protection, who can still accept.
    accept(api, case, enterprise_id(api))
    assert status_of(client, reference)["status"] == "accepted"


def test_mediation_not_ended_in_45_working_days_ends(client, api, autumn):
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, enterprise_id(api))
    public = status_of(client, reference)
    # 45 working days from Monday 2 November 2026: Monday 4 January 2027 (weekends only,
    # New Year's Day 2027 not yet published, so provisional).
    assert public["mediation_by"] == "2027-01-04T15:59:59Z"
    assert public["mediation_by_provisional"] is True

    # The investigation's own limit passes first (leadership supervises), then mediation's.
    assert api.post("/clock/advance", "it", {"duration": "P70D"})["fired"] == 2
    public = status_of(client, reference)
    assert public["status"] == "terminated"
    instance = api.get(f"/instances/{case}", "office")
    assert instance["status"] == "completed" and instance["open_tasks"] == []


# -- who sees which deposit --------------------------------------------------------------------

def test_an_enterprise_sees_only_its_own_deposit(api):
    ent_b = enterprise_id(api)
    items = api.get("/enterprises", "ent-b")["items"]
    assert [(e["id"], e["balance_fen"], e["available_fen"]) for e in items] == [
        (ent_b, DEPOSIT, DEPOSIT)]
    assert len(api.get("/enterprises", "finance")["items"]) >= 2
    body = api.get(f"/enterprises/{ent_b}/deposit", "ent-a", expect=403)
    assert body["error"]["code"] == "forbidden"
    assert api.get("/enterprises/9999/deposit", "finance", expect=404)


def test_finance_ledger_page_and_csv_export(client, api):
    ent_b = enterprise_id(api)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "finance", "password": "demo",
                                "csrf_token": token})
    listing = client.get("/finance/deposits")
    assert listing.status_code == 200 and "盈江县铜壁关草果农民专业合作社" in listing.text
    ledger_page = client.get(f"/finance/deposits/{ent_b}")
    assert "对账通过" in ledger_page.text and "¥10,000.00" in ledger_page.text
    export = client.get("/finance/deposits.csv")
    assert export.mimetype == "text/csv"
    lines = export.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("企业编号,企业,序号,类型")
    assert f"{ent_b},盈江县铜壁关草果农民专业合作社,1,缴纳,10000.00,1000000," in lines[1]

    client.post("/logout", data={"csrf_token": token})
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "market", "password": "demo",
                                "csrf_token": token})
    assert client.get("/finance/deposits").status_code == 403



# -- from a label to a complaint; rules staff edit -------------------------------------------

def test_a_complaint_from_a_label_names_its_enterprise(client, api):
    from test_labels import batch_urls, code_of, issue
    from test_licences import grant

    grant(api, quota=10)
    licence = api.get("/licences", "ent-b")["items"][0]["id"]
    batch = issue(api, licence, 1)
    code = code_of(batch_urls(client, api, batch["id"])[0])

    verify_page = client.get(f"/v/{code}?geo=0")
    link = f"/complaints/new?code={code}"
    assert link in verify_page.text
    assert f'value="{code}"' in client.get(link).text

    reference = file_online(client, dict(COMPLAINT, label_code=code))["reference"]
    complaint = staff_view(api, reference)
    assert complaint["enterprise_id"] == enterprise_id(api)
    task = the_task(api, "protection", complaint["instance_id"], "acceptance")
    form = api.get(f"/tasks/{task['id']}", "protection")["form"]
    assert "enterprise_id" in [f["name"] for f in form["fields"]]

    # A code that is not a printed label names nobody.
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    reference = file_online(client, dict(COMPLAINT, label_code=forged))["reference"]
    assert staff_view(api, reference)["enterprise_id"] is None


def login(client, username):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": username, "password": "demo",
                                           "csrf_token": token})
    assert response.status_code == 302
    return token


def test_office_changes_a_rule_on_the_rules_page(app, client):
    token = login(client, "office")
    page = client.get("/office/rules")
    assert "deposit.repeat_dispute_count" in page.text and "complaint.filings_per_hour" in page.text

    changed = client.post("/office/rules/deposit.repeat_dispute_count",
                          data={"value": "4", "reason": "试运营", "csrf_token": token})
    assert changed.status_code == 302
    with app.app_context():
        assert rules.get_rule("deposit.repeat_dispute_count") == 4
    refused = client.post("/office/rules/deposit.repeat_dispute_count",
                          data={"value": "0", "csrf_token": token})
    assert refused.status_code == 422

    client.post("/logout", data={"csrf_token": token})
    login(client, "finance")
    assert client.get("/office/rules").status_code == 403


def test_a_late_investigation_is_supervised_until_the_verdict(client, api, autumn):
    ent_b = enterprise_id(api)
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, ent_b)

    # Ten working days from Monday 2 November end on Monday 16 November.
    assert api.post("/clock/advance", "it", {"duration": "P14D"})["fired"] == 0
    assert api.post("/clock/advance", "it", {"duration": "P1D"})["fired"] == 1
    supervision = the_task(api, "leadership", case, "investigation_supervision")
    assert supervision["name"] == "督办：投诉调查超期"
    assert status_of(client, reference)["escalated"] is True
    assert "办理已超期" in client.get(f"/complaints/{reference}").text

    complete(api, "protection", case, "investigation",
             {"findings": "属实", "sampling_needed": False})
    adjudicate_at_fault(api, case, amount=80_000)
    instance = api.get(f"/instances/{case}", "office")
    assert instance["status"] == "completed" and instance["open_tasks"] == []
    assert status_of(client, reference)["status"] == "at_fault"


def test_a_late_finance_confirmation_is_supervised(client, api, autumn):
    ent_b = enterprise_id(api)
    at_fault_complaint(client, api, ent_b)
    freeze_case = dispute_case(api, ent_b)["instance_id"]
    complete(api, "ent-b", freeze_case, "settlement",
             {"settlement_reference": "ABC-1", "settled_on": "2026-11-02"})

    assert api.post("/clock/advance", "it", {"duration": "P4D"})["fired"] == 1
    supervision = the_task(api, "leadership", freeze_case, "settlement_check_supervision")
    assert supervision["name"] == "督办：财务确认超期"
    assert dispute_case(api, ent_b)["escalation"] == "confirmation_overdue"

    # Finance confirms late; the enterprise had settled in time, so nothing is deducted.
    complete(api, "finance", freeze_case, "settlement_check", {"settlement_received": True})
    assert position(deposit(api, ent_b)) == (DEPOSIT, 0, DEPOSIT, 0)
    complete(api, "leadership", freeze_case, "settlement_check_supervision",
             {"escalation_note": "财务已确认，下不为例"})
    assert api.get(f"/instances/{freeze_case}", "office")["status"] == "completed"


def readonly_value(page, name):
    """The text a read-only form field shows on a task page."""
    match = re.search(rf'data-field="{name}">.*?<div class="field-value[^>]*>(.*?)</div>',
                      page.text, re.S)
    assert match, name
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_adjudicator_sees_the_investigation_and_the_sampling_result(client, api, autumn):
    ent_b = enterprise_id(api)
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, ent_b)
    through_investigation(api, case)

    task = the_task(api, "protection", case, "adjudication")
    login(client, "protection")
    page = client.get(f"/tasks/{task['id']}")
    assert page.status_code == 200
    assert readonly_value(page, "findings") == "投诉属实，同批次留样霉变。"
    assert readonly_value(page, "sample_result") == "不合格"

    # The case page's data carries the investigation too, while the mediation runs.
    case_page = client.get(f"/cases/{case}").text
    assert "投诉属实，同批次留样霉变。" in case_page and "YJQC-2026-0118" in case_page


def test_the_adjudicator_sees_the_findings_without_sampling(client, api, autumn):
    ent_b = enterprise_id(api)
    reference = file_online(client)["reference"]
    case = staff_view(api, reference)["instance_id"]
    accept(api, case, ent_b)
    complete(api, "protection", case, "investigation",
             {"findings": "属实", "sampling_needed": False})

    task = the_task(api, "protection", case, "adjudication")
    login(client, "protection")
    page = client.get(f"/tasks/{task['id']}")
    assert readonly_value(page, "findings") == "属实"
    assert readonly_value(page, "sample_result") == "—"


def test_a_deduction_made_by_the_deadline_names_no_approver(client, api, autumn):
    ent_b = enterprise_id(api)
    at_fault_complaint(client, api, ent_b)
    freeze_case = dispute_case(api, ent_b)["instance_id"]
    assert api.post("/clock/advance", "it", {"duration": "P15D"})["fired"] == 1

    entries = deposit(api, ent_b)["entries"]
    assert [(e["kind"], e["instance_id"], e["approved_by"]) for e in entries[1:]] == [
        ("paid_out", _case_of(entries, "paid_out"), "protection"),
        ("frozen", freeze_case, "protection"),
        ("deducted", freeze_case, None)]

    login(client, "finance")
    page = client.get(f"/finance/deposits/{ent_b}").text
    rows = re.findall(r'<tr data-kind="(\w+)">(.*?)</tr>', page, re.S)
    approvers = {kind: re.findall(r"<td>(.*?)</td>", row, re.S)[5] for kind, row in rows}
    assert approvers["deducted"] == "系统（到期自动）"
    assert approvers["frozen"] == approvers["paid_out"] == "品牌保护（演示）"
    # The export says the same, with the approver's login name.
    export = list(csv.reader(io.StringIO(
        client.get(f"/finance/deposits/{ent_b}.csv").get_data(as_text=True).lstrip("\ufeff"))))
    by_kind = {row[3]: row[7] for row in export[1:]}
    assert by_kind == {"缴纳": "finance", "先行垫付": "protection", "冻结": "protection",
                       "扣缴": "系统（到期自动）"}
    with api.client.application.app_context():
        assert ledger.reconcile().ok


def _case_of(entries, kind):
    return next(e["instance_id"] for e in entries if e["kind"] == kind)
