"""Licence grant (品牌授权) end to end, and the production bound on the label quota."""

from datetime import date

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from test_admission import complete, the_task

from engine.licensing import Certificate, Licence
from web.extensions import db

# 500 mu x 80 kg per mu / 0.5 kg packages = 80,000 packages at most.
APPLICATION = {"product": "black_cardamom", "grade": "green",
               "certificate_number": "LB-53-2612-0001", "base_location": "铜壁关乡",
               "base_area_mu": "500", "yield_kg_per_mu": "80", "package_kg": "0.5"}


def apply_for_licence(api, data=None, expect=201):
    return api.post("/processes/licence_grant/instances", "ent-b",
                    {"data": data or APPLICATION}, expect=expect)


def grant(api, quota=60_000):
    instance_id = apply_for_licence(api)["id"]
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "证书有效"})
    complete(api, "market", instance_id, "fix_quota", {"label_quota": quota})
    complete(api, "office", instance_id, "sign", {"sign_decision": "sign"})
    return instance_id


def test_licence_granted_end_to_end(api):
    instance_id = grant(api)

    instance = api.get(f"/instances/{instance_id}", "ent-b")
    assert instance["status"] == "completed"
    licences = api.get("/licences", "ent-b")["items"]
    assert len(licences) == 1
    licence = licences[0]
    assert licence["status"] == "active"
    assert licence["number"].startswith("YJPP-")
    assert (licence["max_quota"], licence["label_quota"]) == (80_000, 60_000)
    assert (licence["quota_used"], licence["quota_left"]) == (0, 60_000)
    assert licence["royalty_basis_points"] == 25
    assert licence["certificate"] == "LB-53-2612-0001"
    assert api.get(f"/licences/{licence['id']}", "market")["number"] == licence["number"]


def test_quota_above_production_is_refused_and_nothing_changes(api):
    instance_id = apply_for_licence(api)["id"]
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "证书有效"})

    body = complete(api, "market", instance_id, "fix_quota", {"label_quota": 80_001},
                    expect=422)
    assert "label_quota" in body["error"]["fields"]
    assert the_task(api, "market", instance_id, "fix_quota")
    licence = api.get("/licences", "market")["items"][0]
    assert (licence["label_quota"], licence["status"]) == (0, "pending")

    complete(api, "market", instance_id, "fix_quota", {"label_quota": 80_000})
    assert the_task(api, "office", instance_id, "sign")


def test_database_refuses_a_quota_above_production(app, api):
    grant(api)
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(update(Licence).values(label_quota=80_001))
            db.session.flush()
        db.session.rollback()


def test_expired_certificate_cannot_back_a_licence(app, api):
    with app.app_context():
        db.session.execute(update(Certificate).values(valid_from=date(2020, 1, 1),
                                                     valid_until=date(2021, 1, 1)))
        db.session.commit()
    body = apply_for_licence(api, expect=422)
    assert "certificate_number" in body["error"]["fields"]


def test_unadmitted_enterprise_cannot_apply(api):
    body = api.post("/processes/licence_grant/instances", "ent-a", {"data": APPLICATION},
                    expect=409)
    assert body["error"]["code"] == "conflict"


def test_quality_failure_rejects_the_application(api):
    instance_id = apply_for_licence(api)["id"]
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": False, "quality_comment": "农残超标"})
    assert api.get("/licences", "ent-b")["items"][0]["status"] == "rejected"


def test_enterprise_sees_only_its_own_licences(api):
    grant(api)
    assert api.get("/licences", "ent-a")["items"] == []
    licence_id = api.get("/licences", "ent-b")["items"][0]["id"]
    api.get(f"/licences/{licence_id}", "ent-a", expect=403)


def test_a_second_application_for_the_same_product_and_grade_is_refused(api):
    first = apply_for_licence(api)["id"]

    body = apply_for_licence(api, expect=409)
    assert body["error"]["message"] == "该企业已有同一产品、同一等级正在审核的品牌授权申请"
    assert [lic["status"] for lic in api.get("/licences", "ent-b")["items"]] == ["pending"]
    # Another grade of the same product is another licence.
    apply_for_licence(api, dict(APPLICATION, grade="ordinary", certificate_number=None))

    complete(api, "quality", first, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "证书有效"})
    complete(api, "market", first, "fix_quota", {"label_quota": 60_000})
    complete(api, "office", first, "sign", {"sign_decision": "sign"})
    body = apply_for_licence(api, expect=409)
    assert body["error"]["message"] == "该企业已持有同一产品、同一等级的有效品牌授权，无需重复申请"


def test_a_rejected_application_may_be_made_again(api):
    instance_id = apply_for_licence(api)["id"]
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": False, "quality_comment": "农残超标"})

    apply_for_licence(api)
    assert sorted(lic["status"] for lic in api.get("/licences", "ent-b")["items"]) == [
        "pending", "rejected"]
