"""Forced expulsion (强制清退) end to end: the hearing, the decision and its effects."""

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select
from test_admission import APPLICATION, complete, the_task
from test_labels import batch_urls, code_of, issue, verify
from test_licences import grant

from engine import ledger
from engine.labels import LabelBatch
from engine.models import DepositEntry, User
from web.extensions import db

ATOM = "{http://www.w3.org/2005/Atom}"
ADVANCE_FEN = 30_000        # paid to a consumer earlier, not yet repaid
OPENING_FEN = 1_000_000     # ent-b's demo deposit


@pytest.fixture
def unlimited(app):
    app.config["PUBLIC_RATE_LIMIT"] = "100000 per minute"
    return app


@pytest.fixture
def licensed(app, api, unlimited):
    """ent-b with an active licence, two label batches and an outstanding advance."""
    # The advance names a case, as the ledger requires; the grant case stands in for a
    # complaint here.
    case_id = grant(api, quota=200)
    licence = api.get("/licences", "ent-b")["items"][0]
    batches = [issue(api, licence["id"], 3), issue(api, licence["id"], 2)]
    with app.app_context():
        finance = db.session.scalars(select(User).where(User.username == "finance")).one()
        ledger.pay_out(licence["enterprise_id"], ADVANCE_FEN, approved_by=finance.id,
                       instance_id=case_id, note="先行垫付（测试）")
        db.session.commit()
    return {"enterprise_id": licence["enterprise_id"], "licence_id": licence["id"],
            "batch_ids": [b["id"] for b in batches]}


def start(api, enterprise_id, user="protection", expect=201):
    return api.post("/processes/expulsion/instances", user, {"data": {
        "enterprise_id": enterprise_id, "grounds": "quality_harm",
        "evidence": "抽检农残超标，消费者多人投诉", "attachments": "JC-2026-0012"}},
        expect=expect)


def to_decision(api, enterprise_id, statement=True):
    instance_id = start(api, enterprise_id)["id"]
    complete(api, "general", instance_id, "general_review",
             {"review_decision": "proceed", "review_comment": "事实清楚"})
    if statement:
        complete(api, "ent-b", instance_id, "submit_statement", {"statement": "我们已整改"})
    return instance_id


def decide(api, instance_id, decision, expect=200, **extra):
    return complete(api, "leadership", instance_id, "leadership_decision",
                    {"decision": decision, "decision_note": "领导小组会议决定", **extra},
                    expect=expect)


def entries(app, enterprise_id):
    with app.app_context():
        return [(e.kind, e.amount_fen, e.instance_id) for e in db.session.scalars(
            select(DepositEntry).where(DepositEntry.enterprise_id == enterprise_id)
            .order_by(DepositEntry.sequence))]


def all_codes(client, api, batch_ids):
    return [code_of(url) for batch_id in batch_ids
            for url in batch_urls(client, api, batch_id, user="market")]


def test_expulsion_approved_end_to_end(app, client, api, licensed):
    enterprise_id = licensed["enterprise_id"]
    codes = all_codes(client, api, licensed["batch_ids"])
    assert {verify(client, code)["status"] for code in codes} == {"genuine"}

    instance_id = to_decision(api, enterprise_id)
    decide(api, instance_id, "approve")

    assert api.get(f"/instances/{instance_id}", "leadership")["status"] == "completed"
    licence = api.get(f"/licences/{licensed['licence_id']}", "market")
    assert licence["status"] == "revoked"
    assert {verify(client, code)["status"] for code in codes} == {"revoked"}
    with app.app_context():
        statuses = db.session.scalars(select(LabelBatch.status).where(
            LabelBatch.id.in_(licensed["batch_ids"]))).all()
    assert statuses == ["cancelled", "cancelled"]

    # Claims deducted from the deposit, the rest frozen pending legal liability.
    rest = OPENING_FEN - ADVANCE_FEN
    assert entries(app, enterprise_id)[-3:] == [
        ("frozen", ADVANCE_FEN, instance_id), ("deducted", ADVANCE_FEN, instance_id),
        ("frozen", rest, instance_id)]
    with app.app_context():
        position = ledger.position(enterprise_id)
        assert ledger.reconcile(enterprise_id).ok
    assert (position.balance_fen, position.frozen_fen, position.advanced_fen) == (rest, rest, 0)

    # Each effect is in the case history.
    effects = [h["detail"]["effect"] for h in
               api.get(f"/instances/{instance_id}", "leadership")["history"]
               if h["kind"] == "effect"]
    for effect in ("licence_revoked", "label_batches_cancelled", "deposit_settled",
                   "enterprise_expelled", "notice_published"):
        assert effect in effects

    # Expelled and barred: a new admission application is refused.
    body = api.post("/processes/admission_review/instances", "ent-b",
                    {"data": APPLICATION}, expect=409)
    assert "清退" in body["error"]["message"]
    assert body["error"]["barred_until"]

    # The notice is public: page, feed and API.
    notices = client.get("/api/v1/notices").get_json()["items"]
    assert [n["kind"] for n in notices] == ["expulsion"]
    notice = notices[0]
    assert notice["instance_id"] == instance_id
    assert "盈江县铜壁关草果农民专业合作社" in notice["title"]
    assert notice["title"] in client.get("/notices").text
    assert notice["number"] in client.get(f"/notices/{notice['id']}").text
    feed = client.get("/notices.atom")
    assert feed.status_code == 200
    assert feed.mimetype == "application/atom+xml"
    root = ET.fromstring(feed.data)
    titles = [e.findtext(f"{ATOM}title") for e in root.iter(f"{ATOM}entry")]
    assert titles == [notice["title"]]


def test_rejected_expulsion_changes_nothing_but_the_record(app, client, api, licensed):
    enterprise_id = licensed["enterprise_id"]
    before = entries(app, enterprise_id)
    instance_id = to_decision(api, enterprise_id)
    decide(api, instance_id, "reject")

    assert api.get(f"/licences/{licensed['licence_id']}", "market")["status"] == "active"
    code = all_codes(client, api, licensed["batch_ids"])[0]
    assert verify(client, code)["status"] == "genuine"
    assert entries(app, enterprise_id) == before
    assert client.get("/api/v1/notices").get_json()["items"] == []
    history = api.get(f"/instances/{instance_id}", "leadership")["history"]
    assert "expulsion_rejected" in [h["detail"].get("effect") for h in history]
    # Still admitted: it may be sued again, and may apply for another licence.
    assert start(api, enterprise_id, user="office")["status"] == "running"


def test_lesser_sanction_deducts_the_deposit(app, api, licensed):
    enterprise_id = licensed["enterprise_id"]
    instance_id = to_decision(api, enterprise_id)
    decide(api, instance_id, "sanction", sanction_fen=50_000)

    assert entries(app, enterprise_id)[-3:] == [
        ("frozen", 50_000, instance_id), ("paid_out", 50_000, instance_id),
        ("deducted", 50_000, instance_id)]
    assert api.get(f"/licences/{licensed['licence_id']}", "market")["status"] == "active"


def test_a_sanction_above_the_deposit_is_refused_and_the_task_stays(app, api, licensed):
    instance_id = to_decision(api, licensed["enterprise_id"])
    body = decide(api, instance_id, "sanction", sanction_fen=OPENING_FEN * 2, expect=409)
    assert body["error"]["code"] == "conflict"
    assert the_task(api, "leadership", instance_id, "leadership_decision")


def test_hearing_deadline_without_statement_moves_the_case_on(api, licensed):
    instance_id = to_decision(api, licensed["enterprise_id"], statement=False)
    assert the_task(api, "ent-b", instance_id, "submit_statement")

    api.post("/clock/advance", "it", {"duration": "P20D"})

    assert the_task(api, "leadership", instance_id, "leadership_decision")
    tasks = api.get("/tasks?per_page=200", "ent-b")["items"]
    assert not [t for t in tasks if t["instance_id"] == instance_id]
    history = api.get(f"/instances/{instance_id}", "leadership")["history"]
    assert "statement_missing" in [h["detail"].get("effect") for h in history]


def test_general_review_can_dismiss_the_case(api, licensed):
    instance_id = start(api, licensed["enterprise_id"])["id"]
    complete(api, "general", instance_id, "general_review",
             {"review_decision": "dismiss", "review_comment": "证据不足"})
    assert api.get(f"/instances/{instance_id}", "leadership")["status"] == "completed"
    assert api.get(f"/licences/{licensed['licence_id']}", "market")["status"] == "active"


def test_who_may_start_and_against_whom(api, licensed):
    start(api, licensed["enterprise_id"], user="market", expect=403)
    body = start(api, 9999, expect=422)
    assert "enterprise_id" in body["error"]["fields"]
    start(api, licensed["enterprise_id"])
    start(api, licensed["enterprise_id"], user="office", expect=409)
