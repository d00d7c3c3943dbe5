"""Public verification: genuine, counterfeit, revoked and suspect labels; scans; the trace."""

import string
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from test_labels import batch_urls, code_of, issue, verify
from test_licences import grant

from engine import clock, labelcodes, labelkeys, labels
from engine.labels import LabelScan
from engine.licensing import Licence
from web.extensions import db

BASE32 = string.ascii_uppercase + "234567"


@pytest.fixture
def licence_id(api, app):
    app.config["PUBLIC_RATE_LIMIT"] = "100000 per minute"
    grant(api, quota=200)
    return api.get("/licences", "ent-b")["items"][0]["id"]


@pytest.fixture
def codes(client, api, licence_id):
    batch = issue(api, licence_id, 5)
    return [code_of(url) for url in batch_urls(client, api, batch["id"])]


def scans(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LabelScan))


# -- counterfeits ------------------------------------------------------------------------------

def test_changing_any_character_gives_counterfeit(app, codes):
    code = codes[0]
    with app.app_context():
        for index, char in enumerate(code):
            replacement = BASE32[(BASE32.index(char) + 1 + index % 31) % 32]
            forged = code[:index] + replacement + code[index + 1:]
            assert labels.verify_code(forged).status == "counterfeit", index
        db.session.commit()
        assert labels.verify_code(code).status == "genuine"


@pytest.mark.parametrize("forge", [
    lambda c: c[:-1],                    # truncated
    lambda c: c[:60],
    lambda c: c + "A",                   # extended
    lambda c: c.lower(),                 # only upper case is a code
    lambda c: c[:10] + "=" + c[11:],     # outside the alphabet
    lambda c: c[:10] + "ı" + c[11:],     # upper-cases to "I": still not a code
    lambda c: "",
])
def test_malformed_codes_are_counterfeit(client, codes, forge):
    body = verify(client, quote(forge(codes[0]), safe="") or "%20")
    assert body["status"] == "counterfeit"
    assert body["product"] is None and body["scan_count"] is None


def test_a_code_signed_with_an_unknown_key_is_counterfeit(app, client, codes):
    stranger = Ed25519PrivateKey.generate()
    parsed = labelcodes.decode(codes[0])
    for key_id in (parsed.key_id, 9):
        forged = labelcodes.encode(key_id, parsed.serial,
                                   labelcodes.sign(stranger, key_id, parsed.serial))
        assert verify(client, forged)["status"] == "counterfeit"


def test_a_genuinely_signed_serial_that_was_never_issued_is_counterfeit(app, client, codes):
    with app.app_context():
        key = db.session.get(labelkeys.SigningKey, 1)
        signature = labelcodes.sign(labelkeys.private_key(key), 1, 999_999)
    assert verify(client, labelcodes.encode(1, 999_999, signature))["status"] == "counterfeit"


mutation = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 200), st.characters()),
    st.tuples(st.just("insert"), st.integers(0, 200), st.characters()),
    st.tuples(st.just("delete"), st.integers(0, 200), st.none()),
    st.tuples(st.just("truncate"), st.integers(0, 200), st.none()),
    st.tuples(st.just("swap"), st.integers(0, 200), st.integers(0, 200)),
)


def mutate(code, steps):
    for kind, at, arg in steps:
        at = at % (len(code) + 1)
        if kind == "replace" and code:
            at %= len(code)
            code = code[:at] + arg + code[at + 1:]
        elif kind == "insert":
            code = code[:at] + arg + code[at:]
        elif kind == "delete":
            code = code[:at] + code[at + 1:]
        elif kind == "truncate":
            code = code[:at]
        elif kind == "swap" and code:
            i, j = at % len(code), arg % len(code)
            chars = list(code)
            chars[i], chars[j] = chars[j], chars[i]
            code = "".join(chars)
    return code


# No example database: the run leaves nothing behind in the work tree.
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(mutation, min_size=1, max_size=4), pick=st.integers(0, 4))
def test_fuzzed_codes_are_never_accepted_and_never_fail(client, codes, steps, pick):
    code = codes[pick]
    forged = mutate(code, steps)
    if forged == code:
        return
    response = client.get("/api/v1/verify/" + quote(forged, safe=""))
    # A "/" in the mutated code is a path the route does not match: 404, still no 500.
    assert response.status_code in (200, 404), response.status_code
    if response.status_code == 200:
        assert response.get_json()["status"] == "counterfeit", forged


# -- scans -------------------------------------------------------------------------------------

def test_scan_count_and_first_verified_time_and_place(app, client, codes):
    code = codes[0]
    first = verify(client, code, lat="24.7123", lng="97.9456")
    started = clock.now()
    assert first["scan_count"] == 1
    assert first["first_verified_place"] == "24.7123,97.9456"

    verify(client, code, lat="24.7200", lng="97.9500")
    third = verify(client, code)
    assert third["scan_count"] == 3
    assert third["first_verified_at"] == first["first_verified_at"]
    assert third["first_verified_place"] == "24.7123,97.9456"
    assert abs(started - _parse(first["first_verified_at"])) < timedelta(seconds=10)
    assert scans(app) == 3

    # Another label first scanned without coordinates keeps the client's network.
    other = verify(client, codes[1])
    assert other["first_verified_place"] == "IP 127.0.0.0/24"
    assert other["scan_count"] == 1


def _parse(stamp):
    return datetime.fromisoformat(stamp.rstrip("Z"))


def test_counterfeit_scans_are_recorded_too(app, client, codes):
    verify(client, "NOT-A-CODE")
    with app.app_context():
        row = db.session.scalars(select(LabelScan)).one()
        assert (row.status, row.serial, row.code) == ("counterfeit", None, "NOT-A-CODE")


def test_bad_coordinates_fall_back_to_the_network(client, codes):
    body = verify(client, codes[0], lat="north", lng="97")
    assert body["first_verified_place"] == "IP 127.0.0.0/24"
    body = verify(client, codes[1], lat="95", lng="97")
    assert body["first_verified_place"] == "IP 127.0.0.0/24"


def test_the_page_shows_status_scan_count_and_first_verification(client, codes):
    code = codes[0]
    html = client.get(f"/V/{code}?geo=0").get_data(as_text=True)
    assert 'data-status="genuine"' in html
    assert "正品" in html and "草果" in html and "绿色" in html
    assert '<strong id="scan-count" class="count">1</strong>' in html
    assert "IP 127.0.0.0/24" in html

    html = client.get(f"/v/{code}?lat=24.7&lng=97.9").get_data(as_text=True)
    assert '<strong id="scan-count" class="count">2</strong>' in html
    assert "YJPP-" in html
    assert f"/complaints/new?code={code}" in html


def test_the_page_first_asks_for_the_position_without_counting(app, client, codes):
    html = client.get(f"/V/{codes[0]}").get_data(as_text=True)
    # The asking is done by a script file (the CSP runs no inline script); without it, geo=0.
    assert "js/verify-locate.js" in html and "geo=0" in html
    assert scans(app) == 0


def test_a_counterfeit_page_says_so(client, codes):
    last = "B" if codes[0].endswith("A") else "A"
    response = client.get(f"/V/{codes[0][:-1]}{last}?geo=0")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-status="counterfeit"' in html and "假冒" in html


# -- suspect labels ----------------------------------------------------------------------------

def test_past_the_threshold_a_label_is_suspect_and_protection_gets_a_task(api, client, codes):
    api.call("PUT", "/rules/label.suspect_scan_count", "ent-b", {"value": 1}, expect=403)
    api.call("PUT", "/rules/label.suspect_scan_count", "office", {"value": 0}, expect=422)
    rule = api.call("PUT", "/rules/label.suspect_scan_count", "office", {"value": 3})
    assert rule["value"] == 3

    code = codes[0]
    for _ in range(3):
        assert verify(client, code)["status"] == "genuine"
    body = verify(client, code)
    assert body["status"] == "suspect" and body["scan_count"] == 4
    assert body["suspect_reason"] == "扫码次数异常偏多"
    assert verify(client, code)["status"] == "suspect"
    assert verify(client, codes[1])["status"] == "genuine"

    tasks = api.get("/tasks?process=suspect_label", "protection")["items"]
    assert len(tasks) == 1      # the first suspect scan raised one case, later ones none
    task = api.get(f"/tasks/{tasks[0]['id']}", "protection")
    assert task["group"] == "protection"
    assert api.get("/tasks?process=suspect_label", "market")["items"] == []
    instance = api.get(f"/instances/{task['instance_id']}", "protection")
    assert instance["process_key"] == "suspect_label"

    done = api.post(f"/tasks/{task['id']}/complete", "protection",
                    {"data": {"review_decision": "copied", "review_note": "已通知企业"}})
    assert done["instance"]["status"] == "completed"


def test_scans_too_far_apart_too_fast_make_a_label_suspect(api, client, codes):
    code = codes[0]
    assert verify(client, code, lat="24.71", lng="97.94")["status"] == "genuine"   # Yingjiang
    assert verify(client, code, lat="24.72", lng="97.95")["status"] == "genuine"   # next door
    body = verify(client, code, lat="39.90", lng="116.40")                          # Beijing
    assert body["status"] == "suspect"
    assert body["suspect_reason"] == "短时间内在相距很远的地点被扫码"
    assert len(api.get("/tasks?process=suspect_label", "protection")["items"]) == 1


def test_far_apart_but_slowly_is_not_suspect(api, client, codes):
    code = codes[0]
    verify(client, code, lat="24.71", lng="97.94")
    api.post("/clock/advance", "it", {"duration": "P3D"})
    assert verify(client, code, lat="39.90", lng="116.40")["status"] == "genuine"


def test_nobody_starts_a_suspect_case_by_hand(api):
    body = api.post("/processes/suspect_label/instances", "protection", {"data": {}},
                    expect=403)
    assert body["error"]["code"] == "forbidden"


# -- revoked -----------------------------------------------------------------------------------

def test_a_revoked_licence_labels_verify_as_revoked(app, client, codes, licence_id):
    assert verify(client, codes[0])["status"] == "genuine"
    with app.app_context():
        labels.revoke_licence(db.session.get(Licence, licence_id), None, "强制清退")
        db.session.commit()

    body = verify(client, codes[0])
    assert body["status"] == "revoked"
    assert body["revoked_because"] == "品牌授权已撤销"
    assert body["licence"]["status"] == "revoked"
    assert body["scan_count"] == 2
    html = client.get(f"/V/{codes[1]}?geo=0").get_data(as_text=True)
    assert 'data-status="revoked"' in html


def test_only_leadership_or_office_revoke_a_licence(app, licence_id):
    from engine.models import User

    with app.app_context():
        licence = db.session.get(Licence, licence_id)
        market = db.session.scalars(select(User).where(User.username == "market")).one()
        with pytest.raises(labels.Forbidden):
            labels.revoke_licence(licence, market)
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        assert labels.revoke_licence(licence, office).status == "revoked"
        db.session.rollback()


# -- rate limit --------------------------------------------------------------------------------

def test_public_endpoints_are_rate_limited_with_a_proper_error(app, client, codes):
    app.config["PUBLIC_RATE_LIMIT"] = "2 per minute"
    verify(client, codes[0])
    verify(client, codes[0])
    response = client.get(f"/api/v1/verify/{codes[0]}")
    assert response.status_code == 429
    assert response.get_json()["error"]["message"] == "请求过于频繁"
    page = client.get(f"/V/{codes[0]}?geo=0")
    assert page.status_code == 429
    assert "请求过于频繁" in page.get_data(as_text=True)


# -- trace -------------------------------------------------------------------------------------

def test_trace_events_are_recorded_and_shown_in_order(api, client, licence_id):
    path = f"/licences/{licence_id}/trace-events"
    first = issue(api, licence_id, 2)
    second = issue(api, licence_id, 2)

    api.post(path, "ent-b", {"kind": "transport", "occurred_at": "2025-10-03T09:00",
                             "place": "盈江至昆明"}, expect=201)
    api.post(path, "ent-b", {"kind": "harvest", "occurred_at": "2025-09-20",
                             "place": "铜壁关乡基地", "note": "人工采收"}, expect=201)
    body = api.post(path, "ent-b", {"kind": "inspection", "occurred_at": "2025-09-25",
                                    "place": "县质检站"}, expect=422)
    assert "report_ref" in body["error"]["fields"]
    api.post(path, "ent-b", {"kind": "inspection", "occurred_at": "2025-09-25",
                             "place": "县质检站", "report_ref": "YJZJ-2025-118"}, expect=201)
    api.post(path, "ent-b", {"kind": "outlet", "occurred_at": "2025-10-05", "place": "昆明门店",
                             "batch_id": second["id"]}, expect=201)
    assert len(api.get(path, "market")["items"]) == 4
    api.post(path, "ent-a", {"kind": "harvest", "occurred_at": "2025-09-20", "place": "x"},
             expect=403)
    bad = api.post(path, "ent-b", {"kind": "picnic", "occurred_at": "tomorrow", "place": ""},
                   expect=422)
    assert set(bad["error"]["fields"]) == {"kind", "occurred_at", "place"}

    code = code_of(batch_urls(client, api, first["id"])[0])
    trace = verify(client, code)["trace"]
    assert [e["kind"] for e in trace] == ["harvest", "inspection", "transport"]
    assert trace[1]["report_ref"] == "YJZJ-2025-118"
    assert trace[0]["kind_name"] == "采收"
    assert trace[0]["occurred_at"] == "2025-09-19T16:00:00Z"     # Beijing midnight in UTC
    code = code_of(batch_urls(client, api, second["id"])[0])
    assert [e["kind"] for e in verify(client, code)["trace"]][-1] == "outlet"
    html = client.get(f"/V/{code}?geo=0").get_data(as_text=True)
    assert html.index("铜壁关乡基地") < html.index("YJZJ-2025-118") < html.index("昆明门店")
