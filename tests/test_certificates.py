"""三品一标 certificates: recorded by quality staff (page and API), listed with expired ones
marked, and re-checked when a licence's quota is fixed and when the office signs.

The clock is pinned to Monday 12 October 2026 so that validity dates are known.
"""

from datetime import datetime

import pytest
from test_admission import complete, the_task
from test_complaints import set_clock
from test_inbox import csrf_of, login
from test_licences import APPLICATION

CERTIFICATE = {"number": "LB-53-2610-0077", "grade": "green", "holder": "铜壁关草果合作社",
               "product": "black_cardamom", "scale": "草果基地 300 亩",
               "valid_from": "2026-01-01", "valid_until": "2026-10-20"}


@pytest.fixture
def october(app):
    """Monday 12 October 2026, 10:00 in Yingjiang."""
    set_clock(app, datetime(2026, 10, 12, 2, 0))


def ent_b(api):
    return api.get("/enterprises", "ent-b")["items"][0]["id"]


def record(api, user="quality", expect=201, **changes):
    return api.post("/certificates", user, dict(CERTIFICATE, **changes), expect=expect)


def numbers(body):
    return [c["number"] for c in body["items"]]


# -- recording and listing -----------------------------------------------------------------------

def test_quality_records_a_certificate_that_its_enterprise_and_staff_see(api, october):
    enterprise = ent_b(api)
    body = record(api, enterprise_id=enterprise)
    assert (body["number"], body["grade"], body["holder"], body["product"]) == (
        "LB-53-2610-0077", "green", "铜壁关草果合作社", "black_cardamom")
    assert (body["valid_from"], body["valid_until"]) == ("2026-01-01", "2026-10-20")
    assert (body["status"], body["status_text"], body["expired"]) == ("valid", "有效", False)

    for staff in ("quality", "market", "office", "leadership"):
        assert "LB-53-2610-0077" in numbers(api.get("/certificates", staff))
    assert "LB-53-2610-0077" in numbers(api.get(f"/certificates?enterprise={enterprise}",
                                                "market"))
    own = api.get("/certificates", "ent-b")["items"]
    assert own and all(c["enterprise_id"] == enterprise for c in own)
    assert "LB-53-2610-0077" in [c["number"] for c in own]

    # Another enterprise sees none of them and may not ask for them; other departments none.
    assert api.get("/certificates", "ent-a")["items"] == []
    api.get(f"/certificates?enterprise={enterprise}", "ent-a", expect=403)
    api.get("/certificates", "finance", expect=403)
    record(api, "market", expect=403, number="LB-X")
    record(api, "ent-b", expect=403, number="LB-Y")


def test_bad_certificate_input_gets_422_with_every_field(api, october):
    body = api.post("/certificates", "quality", {}, expect=422)
    assert set(body["error"]["fields"]) == {"number", "grade", "holder", "product",
                                            "valid_from", "valid_until"}
    assert body["error"]["fields"]["number"] == ["请填写 1-64 字的证书编号"]

    body = record(api, expect=422, grade="ordinary", valid_until="2025-12-31",
                  enterprise_id=999_999, product="wine")
    fields = body["error"]["fields"]
    assert fields["grade"] == ["普通等级无需证书"]
    assert fields["valid_until"] == ["有效期截止日早于起始日"]
    assert fields["enterprise_id"] == ["不是已登记企业的编号"]
    assert fields["product"] == ["未知产品"]

    body = record(api, expect=422, valid_from="31/01/2026", holder=["not", "text"])
    assert set(body["error"]["fields"]) == {"valid_from", "holder"}

    record(api)
    body = record(api, expect=422)
    assert body["error"]["fields"] == {"number": ["该证书编号已登记"]}
    assert numbers(api.get("/certificates", "quality")).count("LB-53-2610-0077") == 1


def test_expired_certificates_are_marked(api, client, october):
    record(api)
    record(api, number="LB-OLD-2024", valid_from="2024-01-01", valid_until="2026-10-11")
    record(api, number="LB-NEXT-2027", valid_from="2026-11-01", valid_until="2027-10-31")
    listed = {c["number"]: c for c in api.get("/certificates", "market")["items"]}
    assert (listed["LB-OLD-2024"]["status"], listed["LB-OLD-2024"]["expired"]) == (
        "expired", True)
    assert listed["LB-NEXT-2027"]["status"] == "pending"
    assert listed["LB-53-2610-0077"]["status"] == "valid"

    login(client, "market")
    page = client.get("/quality/certificates")
    assert page.status_code == 200
    row = page.text.split("LB-OLD-2024", 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge">已过期</span>' in row
    assert "2024-01-01 — 2026-10-11" in row
    assert "已过期" not in page.text.split("LB-53-2610-0077", 1)[1].split("</tr>", 1)[0]
    # Market reads the list but has no form to record one.
    assert "登记证书" not in page.text


def test_quality_records_a_certificate_on_the_page(api, client, october):
    login(client, "quality")
    page = client.get("/quality/certificates")
    assert page.status_code == 200 and "登记证书" in page.text
    token = csrf_of(page.text)

    refused = client.post("/quality/certificates",
                          data=dict(CERTIFICATE, holder="", valid_until="2025-01-01",
                                    csrf_token=token))
    assert refused.status_code == 422
    assert "请修改标出的字段" in refused.text
    assert "必填" in refused.text and "有效期截止日早于起始日" in refused.text
    assert 'value="LB-53-2610-0077"' in refused.text      # what was typed is kept
    assert "LB-53-2610-0077" not in numbers(api.get("/certificates", "quality"))

    without_token = client.post("/quality/certificates", data=CERTIFICATE)
    assert without_token.status_code == 400

    done = client.post("/quality/certificates", data=dict(CERTIFICATE, csrf_token=token))
    assert done.status_code == 302
    page = client.get(done.headers["Location"])
    assert "证书已登记：LB-53-2610-0077" in page.text
    assert "草果基地 300 亩" in page.text
    assert "LB-53-2610-0077" in numbers(api.get("/certificates", "market"))


# -- an expired certificate never backs a licence ------------------------------------------------

def apply_with_short_certificate(api):
    """ent-b applies with a certificate valid until 20 October; quality has verified it."""
    record(api, enterprise_id=ent_b(api))
    instance_id = api.post("/processes/licence_grant/instances", "ent-b", {"data": dict(
        APPLICATION, certificate_number="LB-53-2610-0077")}, expect=201)["id"]
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "证书有效"})
    return instance_id


def the_licence(api):
    licences = api.get("/licences", "market")["items"]
    assert len(licences) == 1
    return licences[0]


def test_a_certificate_that_lapsed_before_the_quota_is_refused(api, october):
    instance_id = apply_with_short_certificate(api)
    api.post("/clock/advance", "it", {"duration": "P9D"})        # 21 October

    body = complete(api, "market", instance_id, "fix_quota", {"label_quota": 60_000},
                    expect=422)
    assert body["error"]["fields"] == {
        "label_quota": ["支撑本申请的三品一标证书已过期，不能核定配额"]}
    assert body["error"]["certificate_valid_until"] == "2026-10-20"
    assert the_task(api, "market", instance_id, "fix_quota")
    licence = the_licence(api)
    assert (licence["status"], licence["label_quota"], licence["valid_until"]) == (
        "pending", 0, None)


def test_a_certificate_that_lapsed_before_signing_is_refused(api, october):
    instance_id = apply_with_short_certificate(api)
    complete(api, "market", instance_id, "fix_quota", {"label_quota": 60_000})
    api.post("/clock/advance", "it", {"duration": "P9D"})        # 21 October

    body = complete(api, "office", instance_id, "sign", {"sign_decision": "sign"}, expect=422)
    assert body["error"]["fields"] == {
        "sign_decision": ["支撑本申请的三品一标证书已过期，不能签发，只能不予签发"]}
    assert the_task(api, "office", instance_id, "sign")
    licence = the_licence(api)
    assert (licence["status"], licence["number"], licence["valid_from"]) == (
        "pending", None, None)

    # The office can still refuse it; no active licence ever existed.
    complete(api, "office", instance_id, "sign",
             {"sign_decision": "reject", "sign_comment": "证书已过期"})
    assert the_licence(api)["status"] == "rejected"
    assert api.get("/licences?status=active", "market")["items"] == []


def test_a_licence_signed_in_time_ends_with_its_certificate(api, october):
    instance_id = apply_with_short_certificate(api)
    complete(api, "market", instance_id, "fix_quota", {"label_quota": 60_000})
    api.post("/clock/advance", "it", {"duration": "P8D"})        # 20 October, the last day

    complete(api, "office", instance_id, "sign", {"sign_decision": "sign"})
    licence = the_licence(api)
    assert licence["status"] == "active"
    assert (licence["valid_from"], licence["valid_until"]) == ("2026-10-20", "2026-10-20")
