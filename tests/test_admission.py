"""Admission review (准入审核) end to end through the JSON API, as each department sees it."""

import pytest

from engine import clock

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

GOOD_SCORES = {"score_innovation": 20, "score_channels": 20, "score_experience": 20,
               "score_finance": 20}


def the_task(api, user, instance_id, spec):
    """The open task ``spec`` of the instance, as ``user`` finds it in their inbox."""
    items = api.get("/tasks?per_page=200", user)["items"]
    found = [t for t in items if t["instance_id"] == instance_id and t["task"] == spec]
    assert len(found) == 1, (spec, user, items)
    return found[0]


def complete(api, user, instance_id, spec, data, expect=200):
    task = the_task(api, user, instance_id, spec)
    return api.post(f"/tasks/{task['id']}/complete", user, {"data": data}, expect=expect)


def apply(api, data=None):
    body = api.post("/processes/admission_review/instances", "ent-a",
                    {"data": data or APPLICATION}, expect=201)
    return body["id"]


def through_reviews(api, instance_id, quality_ok=True, finance_ok=True, scores=GOOD_SCORES):
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "complete"})
    complete(api, "quality", instance_id, "quality_review",
             {"quality_ok": quality_ok, "quality_comment": "证书有效"})
    complete(api, "finance", instance_id, "finance_review",
             {"finance_ok": finance_ok, "capital_verified_fen": 200_000_000,
              "finance_comment": "资金状况良好"})
    complete(api, "market", instance_id, "scoring", scores)


def pay_and_confirm(api, instance_id):
    instance = api.get(f"/instances/{instance_id}", "ent-a")
    assert [t["task"] for t in instance["open_tasks"]] == ["pay_deposit"]
    complete(api, "ent-a", instance_id, "pay_deposit",
             {"paid_amount_fen": 5_000_000, "paid_on": "2026-12-04",
              "payment_reference": "YJ-2026-0001"})
    return complete(api, "finance", instance_id, "confirm_deposit",
                    {"deposit_received": True, "deposit_comment": "已到账"})


def test_application_is_admitted(api):
    instance_id = apply(api)
    through_reviews(api, instance_id)

    result = pay_and_confirm(api, instance_id)

    instance = result["instance"]
    assert instance["status"] == "completed"
    assert instance["enterprise_status"] == "admitted"
    assert instance["open_tasks"] == []
    kinds = [h["kind"] for h in instance["history"]]
    assert kinds[0] == "started" and "timer" not in kinds
    effects = [h["detail"]["effect"] for h in instance["history"] if h["kind"] == "effect"]
    assert effects == ["application_opened", "deposit_required", "admitted"]
    admitted = next(h for h in instance["history"] if h["detail"].get("effect") == "admitted")
    assert admitted["detail"]["deposit_fen"] == 5_000_000
    assert admitted["actor"] == "finance"


def test_failed_review_is_rejected_with_reasons(api):
    instance_id = apply(api)
    through_reviews(api, instance_id, quality_ok=False)

    instance = api.get(f"/instances/{instance_id}", "ent-a")
    assert instance["status"] == "completed"
    assert instance["enterprise_status"] == "rejected"
    assert "证书有效" in instance["enterprise_status_reason"]
    assert "综合评分 80 分" in instance["enterprise_status_reason"]


def test_returned_for_supplements_then_admitted(api):
    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "supplement", "supplement_request": "请补充绿色食品证书"})

    task = the_task(api, "ent-a", instance_id, "supplement")
    assert task["group"] == "enterprise" and task["due_at"] is not None
    complete(api, "ent-a", instance_id, "supplement",
             {"supplement_note": "已补充", "certifications": "绿色食品 LB-12-2024 附件"})

    through_reviews(api, instance_id)
    result = pay_and_confirm(api, instance_id)
    assert result["instance"]["enterprise_status"] == "admitted"
    names = [h["task"] for h in result["instance"]["history"] if h["kind"] == "completed"]
    assert names[:3] == ["completeness_check", "supplement", "completeness_check"]


@pytest.mark.parametrize("decision, outcome", [("approve", "admitted"), ("reject", "rejected")])
def test_borderline_score_goes_to_leadership(api, decision, outcome):
    instance_id = apply(api)
    borderline = {"score_innovation": 15, "score_channels": 15, "score_experience": 15,
                  "score_finance": 15}
    through_reviews(api, instance_id, scores=borderline)

    task = the_task(api, "leadership", instance_id, "leadership_review")
    assert task["group"] == "leadership"
    complete(api, "leadership", instance_id, "leadership_review",
             {"leadership_decision": decision, "leadership_comment": "领导小组意见"})

    if decision == "approve":
        pay_and_confirm(api, instance_id)
    instance = api.get(f"/instances/{instance_id}", "ent-a")
    assert instance["enterprise_status"] == outcome


def test_large_enterprise_goes_to_leadership(api):
    instance_id = apply(api, dict(APPLICATION, registered_capital_fen=2_000_000_000))
    through_reviews(api, instance_id)
    assert the_task(api, "leadership", instance_id, "leadership_review")


def test_application_lapses_when_supplement_deadline_passes(api):
    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "supplement", "supplement_request": "请补充证书"})

    early = api.post("/clock/advance", "it", {"duration": "P3D"})
    assert early["fired"] == 0
    assert the_task(api, "ent-a", instance_id, "supplement")

    late = api.post("/clock/advance", "it", {"duration": "P20D"})
    assert late["fired"] == 1

    instance = api.get(f"/instances/{instance_id}", "ent-a")
    assert instance["status"] == "completed"
    assert instance["enterprise_status"] == "lapsed"
    assert instance["open_tasks"] == []
    assert [h["kind"] for h in instance["history"]][-3:] == ["cancelled", "effect", "timer"]


def test_overdue_review_raises_a_leadership_task(api):
    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "complete"})
    assert api.get("/tasks?overdue=true", "quality")["total"] == 0

    api.post("/clock/advance", "it", {"duration": "P10D"})

    overdue = api.get("/tasks?overdue=true", "quality")["items"]
    assert [t["task"] for t in overdue] == ["quality_review"]
    escalations = {t["task"] for t in api.get("/tasks", "leadership")["items"]}
    assert escalations == {"escalate_quality", "escalate_finance"}
    # The review itself stays open with the quality department.
    assert the_task(api, "quality", instance_id, "quality_review")


def test_second_application_while_one_is_open_is_refused(api):
    apply(api)
    body = api.post("/processes/admission_review/instances", "ent-a",
                    {"data": APPLICATION}, expect=409)
    assert body["error"]["code"] == "conflict"


def test_invalid_application_gives_field_errors(api):
    bad = dict(APPLICATION, registered_capital_fen=12.5, kind="bank")
    del bad["contact_name"]
    body = api.post("/processes/admission_review/instances", "ent-a", {"data": bad},
                    expect=422)
    fields = body["error"]["fields"]
    assert {"registered_capital_fen", "kind", "contact_name"} <= set(fields)


def test_staff_cannot_start_an_application(api):
    body = api.post("/processes/admission_review/instances", "market",
                    {"data": APPLICATION}, expect=403)
    assert body["error"]["code"] == "forbidden"


def test_a_deposit_payment_dated_after_today_is_refused_on_the_date(api):
    instance_id = apply(api)
    through_reviews(api, instance_id)
    payment = {"paid_amount_fen": 5_000_000, "paid_on": "2099-01-01",
               "payment_reference": "YJ-2026-0001"}

    body = complete(api, "ent-a", instance_id, "pay_deposit", payment, expect=422)
    today = clock.today().isoformat()
    assert body["error"]["fields"] == {"paid_on": [f"日期不能晚于今天（{today}）"]}
    assert the_task(api, "ent-a", instance_id, "pay_deposit")["state"] == "open"

    complete(api, "ent-a", instance_id, "pay_deposit", dict(payment, paid_on=today))
    assert [t["task"] for t in api.get(f"/instances/{instance_id}", "ent-a")["open_tasks"]] == [
        "confirm_deposit"]
