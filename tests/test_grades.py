"""Quality grades and their standards: office staff edit the dimensions on /office/grades,
quality staff see them where they verify a licence application; and the site's front door."""

import re

from test_admission import complete, the_task
from test_inbox import csrf_of, login
from test_licences import apply_for_licence

GRADE_NAMES = ["地理标志", "有机", "绿色", "无公害", "普通"]


def section(html, grade):
    """The page's section of one grade."""
    match = re.search(rf'<section class="card" id="grade-{grade}">(.*?)</section>', html, re.S)
    assert match, grade
    return match.group(1)


def dimension_ids(html, grade):
    return [int(i) for i in re.findall(r'id="dimension-(\d+)"', section(html, grade))]


def test_office_sees_the_five_grades_with_their_dimensions(client):
    login(client, "office")
    inbox = client.get("/inbox").text
    assert 'href="/office/grades"' in inbox and 'href="/office/rules"' in inbox

    page = client.get("/office/grades")
    assert page.status_code == 200
    headings = re.findall(r'<section class="card" id="grade-\w+">\s*<h2>(.*?)</h2>', page.text)
    assert headings == GRADE_NAMES
    gi = section(page.text, "gi")
    for name in ("产地范围", "甜度", "外观", "农药残留"):
        assert f"<td>{name}</td>" in gi
    assert "尚未定义质量标准维度" in section(page.text, "green")


def test_office_adds_edits_and_removes_a_dimension(client):
    login(client, "office")
    token = csrf_of(client.get("/office/grades").text)

    added = client.post("/office/grades/green/dimensions",
                        data={"name": "化肥用量", "requirement": "不超过常规用量的一半",
                              "csrf_token": token})
    assert added.status_code == 302
    page = client.get("/office/grades")
    assert "已增加质量标准维度：化肥用量" in page.text
    green = section(page.text, "green")
    assert "<td>化肥用量</td>" in green and "<td>不超过常规用量的一半</td>" in green
    assert "化肥用量" not in section(page.text, "organic")
    [dimension] = dimension_ids(page.text, "green")

    edited = client.post(f"/office/grades/dimensions/{dimension}",
                         data={"name": "化肥施用量", "requirement": "每亩不超过 20 公斤",
                               "csrf_token": token})
    assert edited.status_code == 302
    green = section(client.get("/office/grades").text, "green")
    assert "<td>化肥施用量</td>" in green and "<td>每亩不超过 20 公斤</td>" in green

    removed = client.post(f"/office/grades/dimensions/{dimension}/delete",
                          data={"csrf_token": token})
    assert removed.status_code == 302
    page = client.get("/office/grades")
    assert "已删除质量标准维度：化肥施用量" in page.text
    assert dimension_ids(page.text, "green") == []
    assert client.post(f"/office/grades/dimensions/{dimension}/delete",
                       data={"csrf_token": token}).status_code == 404


def test_a_nameless_dimension_is_refused_on_its_own_form(client):
    login(client, "office")
    page = client.get("/office/grades").text
    token = csrf_of(page)
    first_gi = dimension_ids(page, "gi")[0]

    refused = client.post("/office/grades/organic/dimensions",
                          data={"name": "  ", "requirement": "转换期三年", "csrf_token": token})
    assert refused.status_code == 422
    organic = section(refused.text, "organic")
    assert "请填写 1-100 字的名称" in organic and 'value="转换期三年"' in organic
    assert "请填写 1-100 字的名称" not in section(refused.text, "gi")
    assert dimension_ids(refused.text, "organic") == []

    refused = client.post(f"/office/grades/dimensions/{first_gi}",
                          data={"name": "x" * 101, "csrf_token": token})
    assert refused.status_code == 422
    row = refused.text.split(f'id="dimension-{first_gi}"', 1)[1].split("</tr>", 1)[0]
    assert "请填写 1-100 字的名称" in row
    assert "<td>产地范围</td>" in section(client.get("/office/grades").text, "gi")


def test_only_the_office_edits_standards_and_only_with_a_csrf_token(client):
    login(client, "office")
    assert client.post("/office/grades/green/dimensions",
                       data={"name": "无令牌"}).status_code == 400

    login(client, "quality")
    assert client.get("/office/grades").status_code == 403
    token = csrf_of(client.get("/inbox").text)
    assert client.post("/office/grades/green/dimensions",
                       data={"name": "越权", "csrf_token": token}).status_code == 403
    login(client, "office")
    assert "无令牌" not in client.get("/office/grades").text
    assert "越权" not in client.get("/office/grades").text


def test_quality_sees_the_grade_standard_where_it_verifies(client, api):
    login(client, "office")
    token = csrf_of(client.get("/office/grades").text)
    client.post("/office/grades/green/dimensions",
                data={"name": "农药残留", "requirement": "符合绿色食品标准", "csrf_token": token})

    instance_id = apply_for_licence(api)["id"]
    task = the_task(api, "quality", instance_id, "verify_quality")
    login(client, "quality")
    page = client.get(f"/tasks/{task['id']}")
    assert page.status_code == 200
    standard = page.text.split('id="quality-standard"', 1)[1].split("</section>", 1)[0]
    assert "申请等级的质量标准：绿色" in standard
    assert "<td>农药残留</td><td>符合绿色食品标准</td>" in standard
    assert "产地范围" not in standard                   # a GI dimension, not this grade's
    assert "LB-53-2612-0001" in standard and "· 有效" in standard

    # The market department's quota task shows no standard panel.
    complete(api, "quality", instance_id, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "符合"})
    quota = the_task(api, "market", instance_id, "fix_quota")
    login(client, "market")
    assert 'id="quality-standard"' not in client.get(f"/tasks/{quota['id']}").text


# -- the front door ------------------------------------------------------------------------------

def test_anonymous_visitors_land_on_the_brand_portal(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/brand/")
    portal = client.get("/", follow_redirects=True)
    assert portal.status_code == 200
    assert 'href="/login"' in portal.text                # the staff login is one click away


def test_signed_in_users_land_on_their_inbox_or_portal(client):
    login(client, "market")
    assert client.get("/").headers["Location"].endswith("/inbox")
    login(client, "ent-b")
    assert client.get("/").headers["Location"].endswith("/portal/")
