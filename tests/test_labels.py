"""Label batches: quota-bounded issuing, exports the print shop can read, keys and cancelling."""

import io
import threading

import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import func, select
from test_licences import grant

from engine import labelcodes, labelkeys, labels, labelsheet
from engine.labels import Label, LabelBatch
from engine.licensing import Licence
from engine.models import User
from web.extensions import db


@pytest.fixture
def unlimited(app):
    """Public endpoints without a practical rate limit (the tests scan a lot)."""
    app.config["PUBLIC_RATE_LIMIT"] = "100000 per minute"
    return app


@pytest.fixture
def licence_id(api):
    grant(api, quota=200)
    return api.get("/licences", "ent-b")["items"][0]["id"]


def issue(api, licence_id, count, user="ent-b", expect=201):
    return api.post(f"/licences/{licence_id}/label-batches", user, {"count": count},
                    expect=expect)


def download(client, api, path, user="ent-b", expect=200):
    response = client.get(f"/api/v1{path}",
                          headers={"Authorization": f"Bearer {api.token(user)}"})
    assert response.status_code == expect, response.get_data(as_text=True)[:500]
    return response


def batch_urls(client, api, batch_id, user="ent-b"):
    text = download(client, api, f"/label-batches/{batch_id}/codes.csv", user).get_data(
        as_text=True)
    lines = text.splitlines()
    assert lines[0] == "serial,url"
    return [line.split(",")[1] for line in lines[1:]]


def code_of(url):
    return url.rsplit("/", 1)[1]


def verify(client, code, **params):
    response = client.get(f"/api/v1/verify/{code}", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()


def label_rows(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Label))


# -- issuing within the quota -----------------------------------------------------------------

def test_batch_within_quota_is_issued(api, licence_id):
    batch = issue(api, licence_id, 150)

    assert (batch["count"], batch["status"]) == (150, "active")
    assert batch["first_serial"] == "000000000001"
    assert batch["last_serial"] == "000000000150"
    assert api.get(f"/label-batches/{batch['id']}", "market")["count"] == 150
    licence = api.get(f"/licences/{licence_id}", "ent-b")
    assert (licence["quota_used"], licence["quota_left"]) == (150, 50)


def test_one_more_than_remaining_is_refused_and_nothing_is_issued(app, api, licence_id):
    issue(api, licence_id, 150)

    body = issue(api, licence_id, 51, expect=422)
    assert body["error"]["code"] == "validation_failed"
    assert "count" in body["error"]["fields"]
    assert body["error"]["quota_left"] == 50
    licence = api.get(f"/licences/{licence_id}", "ent-b")
    assert (licence["quota_used"], licence["quota_left"]) == (150, 50)
    assert label_rows(app) == 150
    assert len(api.get(f"/licences/{licence_id}/label-batches", "ent-b")["items"]) == 1

    issue(api, licence_id, 50)
    assert api.get(f"/licences/{licence_id}", "ent-b")["quota_left"] == 0
    assert label_rows(app) == 200


@pytest.mark.parametrize("count", [0, -1, "ten", 1.5, True, None, 10**9])
def test_a_count_that_is_not_a_positive_integer_is_refused(api, licence_id, count):
    body = issue(api, licence_id, count, expect=422)
    assert "count" in body["error"]["fields"]


def test_only_the_licence_holder_or_market_issue_labels(api, licence_id):
    issue(api, licence_id, 1, user="ent-a", expect=403)
    issue(api, licence_id, 1, user="quality", expect=403)
    assert issue(api, licence_id, 1, user="market")["count"] == 1


def test_a_stale_licence_cannot_overdraw_the_quota(app, api, licence_id):
    """The guarded UPDATE decides, not the copy of the licence the service read first."""
    with app.app_context():
        licence = db.session.get(Licence, licence_id)
        market = db.session.scalars(select(User).where(User.username == "market")).one()
        assert licence.quota_left == 200
        # Another batch lands after this request read the licence.
        db.session.execute(Licence.__table__.update().values(labels_issued=195))
        with pytest.raises(labels.ValidationFailed):
            labels.issue_label_batch(licence, 10, market)
        db.session.rollback()
    assert label_rows(app) == 0


def test_concurrent_batches_never_exceed_the_quota(app, api, licence_id):
    token = api.token("ent-b")
    statuses = []
    barrier = threading.Barrier(2)

    def post():
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/licences/{licence_id}/label-batches",
                               json={"count": 120}, headers={"Authorization": f"Bearer {token}"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses)[0] == 201 and sorted(statuses)[1] in (409, 422), statuses
    assert api.get(f"/licences/{licence_id}", "ent-b")["quota_used"] == 120
    assert label_rows(app) == 120


def test_a_licence_that_is_not_active_issues_nothing(app, api, licence_id):
    with app.app_context():
        labels.revoke_licence(db.session.get(Licence, licence_id))
        db.session.commit()
    body = issue(api, licence_id, 1, expect=409)
    assert body["error"]["code"] == "conflict"
    assert label_rows(app) == 0


# -- exports -----------------------------------------------------------------------------------

def test_csv_has_one_upper_case_url_per_label(client, api, licence_id):
    batch = issue(api, licence_id, 30)
    response = download(client, api, f"/label-batches/{batch['id']}/codes.csv")
    assert response.mimetype == "text/csv"
    urls = batch_urls(client, api, batch["id"])

    assert len(urls) == len(set(urls)) == 30
    for url in urls:
        assert url.startswith("HTTP://127.0.0.1:5000/V/")
        assert url == url.upper()
        assert len(code_of(url)) == labelcodes.CODE_LENGTH == 112
        assert len(url) == 136
    download(client, api, f"/label-batches/{batch['id']}/codes.csv", user="ent-a", expect=403)


def test_every_code_of_a_batch_verifies_as_genuine(client, api, licence_id, unlimited):
    batch = issue(api, licence_id, 60)
    for url in batch_urls(client, api, batch["id"]):
        body = verify(client, code_of(url))
        assert body["status"] == "genuine", body
        assert body["scan_count"] == 1


def test_qr_codes_in_the_pdf_decode_to_the_csv_urls(client, api, licence_id):
    batch = issue(api, licence_id, 45)     # a full page and a part page
    urls = batch_urls(client, api, batch["id"])
    response = download(client, api, f"/label-batches/{batch['id']}/labels.pdf")
    assert response.mimetype == "application/pdf"

    reader = PdfReader(io.BytesIO(response.get_data()))
    assert len(reader.pages) == 2
    decoded, versions = [], set()
    for page in reader.pages:
        for image in page.images:
            for barcode in zxingcpp.read_barcodes(image.image.convert("L")):
                assert barcode.format == zxingcpp.BarcodeFormat.QRCode
                decoded.append(barcode.text)
                versions.add(int(barcode.extra["Version"]))
                assert barcode.ec_level == "M"
    assert sorted(decoded) == sorted(urls)
    assert max(versions) <= 6


def test_the_longest_url_still_fits_qr_version_6():
    code = labelcodes.encode(labelcodes.MAX_KEY_ID, labelcodes.MAX_SERIAL, b"\xff" * 64)
    version, _matrix = labelsheet.qr_matrix(labelcodes.label_url("http://127.0.0.1:5000", code))
    assert version <= 6


def test_pdf_pages_can_be_chosen_and_are_capped(app, client, api, licence_id):
    batch = issue(api, licence_id, 90)     # three pages
    path = f"/label-batches/{batch['id']}/labels.pdf"
    assert batch["pdf_pages"] == 3

    one = download(client, api, f"{path}?page=3")
    reader = PdfReader(io.BytesIO(one.get_data()))
    assert len(reader.pages) == 1
    texts = [b.text for img in reader.pages[0].images
             for b in zxingcpp.read_barcodes(img.image.convert("L"))]
    assert sorted(texts) == sorted(batch_urls(client, api, batch["id"])[80:])

    assert download(client, api, f"{path}?page=4", expect=422).get_json()["error"]["pages"] == 3
    download(client, api, f"{path}?page=x", expect=422)
    app.config["LABEL_PDF_MAX_PAGES"] = 2
    download(client, api, path, expect=422)
    assert len(PdfReader(io.BytesIO(download(client, api, f"{path}?page=2-3").get_data()))
               .pages) == 2


def test_issuing_renders_no_image(monkeypatch, api, licence_id):
    def refuse(*_args, **_kwargs):
        raise AssertionError("an image was rendered while issuing")

    monkeypatch.setattr(labelsheet, "qr_image", refuse)
    monkeypatch.setattr(labelsheet, "render_pdf", refuse)
    assert issue(api, licence_id, 200)["count"] == 200


# -- cancelling, keys --------------------------------------------------------------------------

def test_a_cancelled_batch_verifies_as_revoked(client, api, licence_id, unlimited):
    kept = issue(api, licence_id, 5)
    cancelled = issue(api, licence_id, 5)

    api.post(f"/label-batches/{cancelled['id']}/cancel", "ent-a", {"reason": "x"}, expect=403)
    body = api.post(f"/label-batches/{cancelled['id']}/cancel", "ent-b", {"reason": "印错"})
    assert body["status"] == "cancelled"
    api.post(f"/label-batches/{cancelled['id']}/cancel", "market", expect=409)

    gone = verify(client, code_of(batch_urls(client, api, cancelled["id"])[0]))
    assert (gone["status"], gone["revoked_because"]) == ("revoked", "该批标签已作废")
    assert verify(client, code_of(batch_urls(client, api, kept["id"])[0]))["status"] == "genuine"
    # Printed labels may exist: the quota is not given back.
    assert api.get(f"/licences/{licence_id}", "ent-b")["quota_used"] == 10


def test_rotated_key_signs_new_labels_and_old_ones_stay_genuine(client, api, licence_id,
                                                                unlimited):
    old = issue(api, licence_id, 3)
    api.post("/label-keys/rotate", "market", expect=403)
    rotated = api.post("/label-keys/rotate", "it", expect=201)
    new = issue(api, licence_id, 3)

    assert (old["key_id"], rotated["id"], new["key_id"]) == (1, 2, 2)
    assert "BEGIN PUBLIC KEY" in rotated["public_key_pem"]
    for batch in (old, new):
        for url in batch_urls(client, api, batch["id"]):
            assert verify(client, code_of(url))["status"] == "genuine"
    assert [k["id"] for k in api.get("/label-keys", "it")["items"]] == [1, 2]


def test_labels_of_a_retired_key_verify_as_revoked(client, api, licence_id, unlimited):
    old = issue(api, licence_id, 3)
    api.post("/label-keys/rotate", "it", expect=201)
    api.post("/label-keys/1/retire", "it", {"reason": "泄露"})
    api.post("/label-keys/1/retire", "it", expect=409)
    new = issue(api, licence_id, 3)

    body = verify(client, code_of(batch_urls(client, api, old["id"])[0]))
    assert (body["status"], body["revoked_because"]) == ("revoked", "签发标签的密钥已停用")
    assert verify(client, code_of(batch_urls(client, api, new["id"])[0]))["status"] == "genuine"


def test_retiring_the_current_key_makes_the_next_batch_use_a_new_one(api, licence_id):
    issue(api, licence_id, 1)
    api.post("/label-keys/1/retire", "office")
    assert issue(api, licence_id, 1)["key_id"] == 2


def test_private_keys_are_sealed_at_rest(app, api, licence_id):
    issue(api, licence_id, 1)
    with app.app_context():
        key = db.session.get(labelkeys.SigningKey, 1)
        private = labelkeys.private_key(key)
        raw = private.private_bytes_raw()
        assert raw not in bytes(key.private_key_sealed)
        assert len(key.public_key) == 32


def test_batch_rows_match_their_serial_range(app, api, licence_id):
    first = issue(api, licence_id, 7)
    second = issue(api, licence_id, 4)
    with app.app_context():
        for body in (first, second):
            batch = db.session.get(LabelBatch, body["id"])
            serials = db.session.scalars(select(Label.serial).where(
                Label.batch_id == batch.id).order_by(Label.serial)).all()
            assert serials == list(range(batch.first_serial, batch.last_serial + 1))


# -- the enterprise portal ---------------------------------------------------------------------

def test_the_portal_issues_a_batch_downloads_it_and_records_the_trace(app, client, api,
                                                                      licence_id):
    from test_inbox import csrf_of, login

    login(client, "ent-b")
    listing = client.get("/portal/licences").text
    assert f"/portal/licences/{licence_id}" in listing
    page = client.get(f"/portal/licences/{licence_id}")
    assert page.status_code == 200 and "发放标签" in page.text

    refused = client.post(f"/portal/licences/{licence_id}/label-batches",
                          data={"count": "201", "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 422 and "超过剩余标签配额" in refused.text
    done = client.post(f"/portal/licences/{licence_id}/label-batches",
                       data={"count": "41", "csrf_token": csrf_of(page.text)},
                       follow_redirects=True)
    assert "已发放 41 枚标签" in done.text
    assert '<span id="quota-left">159</span>' in done.text

    batch = api.get(f"/licences/{licence_id}/label-batches", "ent-b")["items"][0]
    csv_text = client.get(f"/portal/label-batches/{batch['id']}/codes.csv").text
    assert len(csv_text.splitlines()) == 42
    assert f"/portal/label-batches/{batch['id']}/labels.pdf?page=1-2" in done.text
    pdf = client.get(f"/portal/label-batches/{batch['id']}/labels.pdf?page=1-2")
    assert pdf.mimetype == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.data)).pages) == 2

    added = client.post(f"/portal/licences/{licence_id}/trace-events", follow_redirects=True,
                        data={"kind": "harvest", "occurred_at": "2025-09-20T08:00",
                              "place": "铜壁关乡基地", "csrf_token": csrf_of(page.text)})
    assert "追溯信息已登记" in added.text and "铜壁关乡基地" in added.text
    bad = client.post(f"/portal/licences/{licence_id}/trace-events",
                      data={"kind": "inspection", "occurred_at": "2025-09-20", "place": "x",
                            "csrf_token": csrf_of(page.text)})
    assert bad.status_code == 422 and "检验环节须填写检验报告编号" in bad.text


def test_another_enterprise_cannot_open_the_licence_page(client, licence_id):
    from test_inbox import login

    login(client, "ent-a")
    assert client.get(f"/portal/licences/{licence_id}").status_code == 403
