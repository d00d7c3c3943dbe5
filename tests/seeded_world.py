"""A small office with real cases in every department, for the isolation and hostile-input
tests: each case is driven through the JSON API as the departments would.

``build_world(app, client, api)`` returns a dict of ids and keys that tests put into URLs:

- ``market_task``: ent-a's admission case waiting for market's completeness check;
- ``quality_task``: a complaint against ent-b waiting for quality's sampling;
- ``protection_task``: a second complaint waiting for protection's acceptance;
- ``enterprise_task``: ent-b's expulsion hearing, waiting for ent-b's statement;
- cases: ``admission_case`` (ent-a), ``licence_case``, ``complaint_case`` and
  ``expulsion_case`` (all ent-b);
- ent-b's ``licence``, label batches ``batch`` and two spare ones (``spare_batch`` and
  ``portal_spare_batch``, for the verbs that cancel), a genuine label ``code``;
- ``notice``, ``draft`` and ``spare_draft`` (office), ``calendar_day`` (a 2031 holiday in
  the office's own table), the ids of both enterprises, a complaint ``reference``;
- ``dimension`` and ``spare_dimension`` (for the verb that removes): of the organic standard.
"""

from datetime import date

from sqlalchemy import select
from test_admission import APPLICATION as ADMISSION
from test_admission import complete, the_task
from test_complaints import COMPLAINT
from test_labels import batch_urls, code_of, issue
from test_licences import grant

from engine import licensing, notices, workdays
from engine.models import User
from web.extensions import db

ENTERPRISE_B, ENTERPRISE_A = "ent-b", "ent-a"


def _file_complaint(client, data=None):
    response = client.post("/api/v1/complaints", json=data or COMPLAINT)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def _complaint_case(api, reference):
    found = [c for c in api.get("/complaints", "protection")["items"]
             if c["reference"] == reference]
    assert len(found) == 1, reference
    return found[0]["instance_id"]


def build_world(app, client, api, complaint=None, admission=None, statement_evidence=None):
    """Seed the cases; ``complaint``/``admission`` override the texts filed (for payloads)."""
    app.config["RATELIMIT_ENABLED"] = False
    world = {}
    enterprises = {e["name"]: e["id"] for e in api.get("/enterprises", "finance")["items"]}
    with app.app_context():
        users = {u.username: u for u in db.session.scalars(select(User))}
        world["ent_a"] = users[ENTERPRISE_A].enterprise_id
        world["ent_b"] = users[ENTERPRISE_B].enterprise_id
    assert set(enterprises.values()) >= {world["ent_a"], world["ent_b"]}

    # ent-a applies for admission; market has its completeness check.
    admission_case = api.post("/processes/admission_review/instances", ENTERPRISE_A,
                              {"data": admission or ADMISSION}, expect=201)["id"]
    world["admission_case"] = admission_case
    world["market_task"] = the_task(api, "market", admission_case, "completeness_check")["id"]

    # ent-b holds a licence with labels and a trace.
    world["licence_case"] = grant(api, quota=500)
    licence = api.get("/licences", ENTERPRISE_B)["items"][0]["id"]
    world["licence"] = licence
    world["batch"] = issue(api, licence, 3)["id"]
    world["spare_batch"] = issue(api, licence, 1)["id"]
    world["portal_spare_batch"] = issue(api, licence, 1)["id"]
    world["code"] = code_of(batch_urls(client, api, world["batch"])[0])
    api.post(f"/licences/{licence}/trace-events", ENTERPRISE_B,
             {"kind": "harvest", "occurred_at": "2026-10-01 08:00", "place": "铜壁关乡",
              "note": "秋季采收"}, expect=201)

    # A complaint against ent-b, accepted and investigated: quality samples.
    world["reference"] = _file_complaint(client, complaint)
    case = _complaint_case(api, world["reference"])
    world["complaint_case"] = case
    complete(api, "protection", case, "acceptance",
             {"accept_decision": "accept", "enterprise_id": world["ent_b"],
              "acceptance_note": (complaint or {}).get("description", "属于受理范围")[:500]})
    complete(api, "protection", case, "investigation",
             {"findings": "投诉属实", "sampling_needed": True, "sampling_request": "抽检同批次"})
    world["quality_task"] = the_task(api, "quality", case, "sampling")["id"]

    # A second complaint, not yet accepted: protection's task.
    second = _complaint_case(api, _file_complaint(client, complaint))
    world["protection_task"] = the_task(api, "protection", second, "acceptance")["id"]

    # An expulsion case against ent-b at its hearing: ent-b's own task.
    expulsion = api.post("/processes/expulsion/instances", "protection", {"data": {
        "enterprise_id": world["ent_b"], "grounds": "quality_harm",
        "evidence": statement_evidence or "抽检农残超标", "attachments": "JC-2026-0012"}},
        expect=201)["id"]
    world["expulsion_case"] = expulsion
    complete(api, "general", expulsion, "general_review",
             {"review_decision": "proceed", "review_comment": "事实清楚"})
    world["enterprise_task"] = the_task(api, ENTERPRISE_B, expulsion, "submit_statement")["id"]

    # Office material: two drafts, a notice, a holiday in a year without official data.
    world["draft"] = api.post("/processes/admission_review/drafts", "office", {},
                              expect=201)["id"]
    world["spare_draft"] = api.post("/processes/admission_review/drafts", "office", {},
                                    expect=201)["id"]
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        world["notice"] = notices.publish_announcement(office, "试运营公告", "品牌系统试运营。").id
        world["calendar_day"] = date(2031, 5, 6).isoformat()
        workdays.set_calendar_day(date(2031, 5, 6), False, "劳动节", office)
        db.session.commit()
    world["key_id"] = 1

    # Two dimensions of the organic standard: one to edit, a spare one to delete.
    with app.app_context():
        world["dimension"] = licensing.add_dimension("organic", "有机转换期").id
        world["spare_dimension"] = licensing.add_dimension("organic", "探针删除用").id
        db.session.commit()
    return world
