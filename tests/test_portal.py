"""The public brand portal and the notices: anonymous pages, escaping, who may edit."""

import xml.etree.ElementTree as ET

import pytest
from test_complaints import login
from test_licences import grant

from engine import labels, notices
from engine.licensing import Licence
from web.extensions import db

PUBLIC_PAGES = ["/brand/", "/brand/pages/story", "/brand/enterprises", "/brand/outlets",
                "/brand/verify", "/notices", "/notices.atom", "/api/v1/notices"]
SCRIPT = "<script>alert('x')</script>"


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_render_for_anonymous_visitors(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    if response.mimetype == "text/html":
        assert 'lang="zh-CN"' in response.text
        assert "盈江县区域公共品牌" in response.text


def test_home_links_the_portal_sections(client):
    page = client.get("/brand/").text
    for target in ("/brand/enterprises", "/brand/outlets", "/brand/verify",
                   "/complaints/new", "/notices", "/brand/pages/story"):
        assert f'href="{target}' in page


def test_directory_lists_only_active_licences(app, client, api):
    assert "铜壁关草果" not in client.get("/brand/enterprises").text
    grant(api)
    page = client.get("/brand/enterprises").text
    assert "盈江县铜壁关草果农民专业合作社" in page and "草果" in page and "绿色" in page

    with app.app_context():
        labels.revoke_licence(db.session.scalars(db.select(Licence)).one())
        db.session.commit()
    assert "铜壁关草果" not in client.get("/brand/enterprises").text


def test_verify_entry_redirects_a_typed_code(client):
    response = client.get("/brand/verify?code=ABCDEF234")
    assert response.status_code == 302
    assert response.headers["Location"].upper().endswith("/V/ABCDEF234")
    bad = client.get("/brand/verify", query_string={"code": SCRIPT})
    assert bad.status_code == 422
    assert SCRIPT not in bad.text


def test_office_edits_a_story_page_and_html_is_escaped(client):
    token = login(client, "office")
    response = client.post("/brand/pages/story/edit", data={
        "title": "品牌故事", "body": f"第一段\n\n{SCRIPT}", "csrf_token": token})
    assert response.status_code == 302

    client.post("/logout", data={"csrf_token": token})
    page = client.get("/brand/pages/story").text
    assert SCRIPT not in page
    assert "&lt;script&gt;" in page
    assert "<p>第一段</p>" in page


def test_a_bad_page_is_refused_with_field_errors(client):
    token = login(client, "office")
    response = client.post("/brand/pages/new", data={
        "slug": "Bad Slug!", "title": "", "body": "x", "csrf_token": token})
    assert response.status_code == 422
    assert client.get("/brand/pages/nope").status_code == 404


def test_only_office_staff_edit_content(client):
    assert client.get("/brand/pages/story/edit").status_code == 302   # to the login page
    token = login(client, "market")
    assert client.get("/brand/pages/story/edit").status_code == 403
    response = client.post("/brand/pages/story/edit", data={
        "title": "篡改", "body": "x", "csrf_token": token})
    assert response.status_code == 403
    assert "篡改" not in client.get("/brand/pages/story").text
    assert client.get("/notices/new").status_code == 403


def test_market_keeps_retail_outlets(client):
    token = login(client, "market")
    response = client.post("/brand/outlets/new", data={
        "name": f"新城网点{SCRIPT}", "address": "盈江县新城路 1 号", "products": ["tea"],
        "pickup_note": "到店自提", "active": "on", "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/brand/outlets").text
    assert "新城网点" in page and SCRIPT not in page and "茶叶" in page

    bad = client.post("/brand/outlets/new", data={
        "name": "", "address": "", "products": ["rice"], "enterprise_id": "x",
        "csrf_token": token})
    assert bad.status_code == 422

    client.post("/logout", data={"csrf_token": token})
    login(client, "office")
    assert client.get("/brand/outlets/new").status_code == 403


def test_a_correction_references_the_original_which_stays_unchanged(app, client):
    token = login(client, "office")
    response = client.post("/notices/new", data={
        "title": "关于品牌授权年审的公告", "body": f"年审截止 6 月 30 日。{SCRIPT}",
        "csrf_token": token})
    assert response.status_code == 302
    original = client.get("/api/v1/notices").get_json()["items"][0]

    response = client.post(f"/notices/new?corrects={original['id']}", data={
        "title": "关于品牌授权年审公告的更正", "body": "年审截止日更正为 7 月 15 日。",
        "corrects": str(original["id"]), "csrf_token": token})
    assert response.status_code == 302

    items = client.get("/api/v1/notices").get_json()["items"]
    correction = items[0]
    assert (correction["kind"], correction["corrects_id"]) == ("correction", original["id"])
    assert items[1] == original
    page = client.get(f"/notices/{original['id']}").text
    assert correction["number"] in page
    assert SCRIPT not in page and "&lt;script&gt;" in page

    feed = ET.fromstring(client.get("/notices.atom").data)
    atom = "{http://www.w3.org/2005/Atom}"
    contents = [e.findtext(f"{atom}content") for e in feed.iter(f"{atom}entry")]
    assert f"年审截止 6 月 30 日。{SCRIPT}" in contents

    with app.app_context():
        notice = db.session.get(notices.Notice, original["id"])
        notice.title = "改写"
        with pytest.raises(RuntimeError):
            db.session.flush()
        db.session.rollback()


def test_notice_input_errors_are_4xx(client):
    assert client.get("/api/v1/notices?kind=bogus").status_code == 422
    assert client.get("/api/v1/notices/999").status_code == 404
    assert client.get("/notices/999").status_code == 404
    token = login(client, "office")
    assert client.get("/notices/new?corrects=abc").status_code == 422
    assert client.get("/notices/new?corrects=999").status_code == 404
    response = client.post("/notices/new", data={"title": "", "body": "", "csrf_token": token})
    assert response.status_code == 422
