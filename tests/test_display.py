"""What a person reads: labels instead of codes, yuan, Beijing time, headings that say what
the rows are, and every field error of a submission at once."""

import re
import subprocess
from pathlib import Path

from test_admission import complete, the_task
from test_inbox import COMPLETE, apply, login

from web.demo import seed_demo
from web.demo_royalty import seed_royalty_demo
from web.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_seed_demo_lists_every_demo_login(app):
    with app.app_context():
        seed_royalty_demo()  # what demo mode seeds besides the test data
        db.session.commit()
        line = seed_demo()[0]
    users = line.split(": ", 1)[1].split(", ")
    assert "general" in users and "ent-c" in users
    assert users == ["market", "quality", "finance", "protection", "leadership", "office",
                     "service", "it", "general", "ent-a", "ent-b", "ent-c"]


def test_make_run_banner_names_general_and_ent_c():
    banner = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout
    echoed = " ".join(re.findall(r'echo "([^"]*)"', banner))
    for login_name in ("general", "ent-a", "ent-b", "ent-c", "it"):
        assert re.search(rf"\b{login_name}\b", echoed), (login_name, echoed)


def test_calendar_headings_say_what_the_rows_are(client):
    login(client, "office")
    page = client.get("/calendar?year=2026").text
    assert "放假（工作日）" not in page
    assert "<h2>放假日（不含周末）</h2>" in page
    assert "<h2>调休上班日（周末上班）</h2>" in page


def test_number_fields_show_their_range_from_the_form(app):
    from flask import render_template_string

    from engine.forms import describe
    from web.views_common import forms

    with app.test_request_context("/"):
        scoring = describe(forms().get("admission_scoring"))
        html = render_template_string(
            '{% from "macros/form.html" import render_form %}{{ render_form(form) }}',
            form=scoring)
        quota = render_template_string(
            '{% from "macros/form.html" import render_form %}{{ render_form(form) }}',
            form=describe(forms().get("licence_quota")))

    hint = '<p class="field-range" id="field-score_innovation-range">取值范围：0–25</p>'
    assert hint in html
    assert 'aria-describedby="field-score_innovation-range"' in html
    assert html.count("取值范围：0–25") == 4
    assert "不小于 1" in quota and "取值范围：0–10000" in quota
    assert 'id="field-max_quota-range"' not in quota  # readonly: no input, no hint


# -- the case summary and the history ---------------------------------------------------------

def _summary(html):
    """The case data (案件数据) as {label: text}."""
    block = re.search(r'<dl class="data">(.*?)</dl>', html, flags=re.S).group(1)
    return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block, flags=re.S))


def _history(html):
    return re.search(r'<ol class="history">(.*?)</ol>', html, flags=re.S).group(1)


RAW = ("None", "True", "False", "['", "_fen", "application_opened", "processor",
       "enterprise_status", "T0", "+00:00")


def test_admission_case_data_and_history_read_as_words(api, client):
    a = apply(api, "ent-a")["id"]
    complete(api, "market", a, "completeness_check", COMPLETE)

    login(client, "ent-a")
    html = client.get(f"/cases/{a}").text
    summary = _summary(html)
    assert summary["企业名称"] == "盈江县芒允茶业有限公司"
    assert summary["申请品类"] == "茶叶"
    assert summary["注册资本（元）"] == "¥500,000.00"
    assert summary["基地面积（亩）"] == "80.00"
    assert summary["审查结论"] == "材料齐全"
    assert summary["补正要求"] == "—"
    assert "enterprise_status" not in html and "enterprise_status" not in summary

    history = _history(html)
    assert "准入申请已受理" in history and "application_opened" not in history
    assert "<dt>申请品类</dt><dd>茶叶</dd>" in history
    assert "<dt>注册资本（元）</dt><dd>¥500,000.00</dd>" in history
    for raw in RAW:
        assert raw not in history, raw
        assert all(raw not in text for text in summary.values()), raw


TEA = {"product": "tea", "grade": "ordinary", "base_location": "芒允乡", "base_area_mu": "100",
       "yield_kg_per_mu": "50", "package_kg": "0.5"}   # at most 10,000 packages


def _licence_case(api):
    return api.post("/processes/licence_grant/instances", "ent-b", {"data": TEA},
                    expect=201)["id"]


def test_quality_check_shows_product_and_grade_names(api, client):
    case = _licence_case(api)
    task = the_task(api, "quality", case, "verify_quality")
    login(client, "quality")
    html = client.get(f"/tasks/{task['id']}").text

    product = re.search(r'id="field-product"[^>]*>(.*?)</div>', html, flags=re.S).group(1)
    grade = re.search(r'id="field-grade"[^>]*>(.*?)</div>', html, flags=re.S).group(1)
    assert product.strip() == "茶叶" and grade.strip() == "普通"
    assert _summary(html)["产品"] == "茶叶" and _summary(html)["质量等级"] == "普通"
    assert "品牌授权申请已受理" in _history(html)
    assert "<span class=\"effect-detail\">配额上限（枚）：10000</span>" in _history(html)
    assert "licence_applied" not in html and ">tea<" not in html and "ordinary" not in html


def test_licence_status_is_shown_in_words(api, client):
    case = _licence_case(api)
    login(client, "ent-b")
    listed = client.get("/portal/licences").text
    assert "<td>待审批</td>" in listed and "pending" not in listed

    complete(api, "quality", case, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "合格"})
    complete(api, "market", case, "fix_quota", {"label_quota": 8000})
    complete(api, "office", case, "sign", {"sign_decision": "sign"})
    licence_id = api.get("/licences", "ent-b")["items"][0]["id"]

    assert "<td>有效</td>" in client.get("/portal/licences").text
    page = client.get(f"/portal/licences/{licence_id}").text
    assert '<dd id="licence-status">有效</dd>' in page and "active<" not in page


def test_times_and_codes_in_english(app):
    from web.display import Display, licence_state

    with app.test_request_context("/"):
        shown = Display()
        assert shown.value("settle_by", "2026-03-01T16:30:00Z") == "2026-03-02 00:30"
        assert shown.value("due_on", "2026-03-01T16:30:00") == "2026-03-02 00:30"
        assert shown.value("registered_capital_fen", 500_000_000) == "¥5,000,000.00"
        assert shown.value("amount_fen", -1) == "-¥0.01"
        assert shown.value("products", ["tea", "macadamia"]) == "茶叶、澳洲坚果"
        assert shown.value("quality_ok", False) == "否"
        assert shown.value("supplement_request", None) == "—"
        assert licence_state("revoked") == "已撤销"
        assert licence_state("unheard_of") == "unheard_of"


# -- field errors ------------------------------------------------------------------------------

def test_quota_task_shows_the_quota_and_the_rate_errors_at_once(api, client):
    from test_inbox import csrf_of

    case = _licence_case(api)
    complete(api, "quality", case, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "合格"})
    task = the_task(api, "market", case, "fix_quota")
    login(client, "market")
    page = client.get(f"/tasks/{task['id']}").text

    answer = client.post(f"/tasks/{task['id']}", data={
        "label_quota": "20000", "royalty_basis_points": "20000", "csrf_token": csrf_of(page)})
    assert answer.status_code == 422
    html = answer.text
    assert '<p class="field-error" id="field-royalty_basis_points-error-1">不能大于 10000</p>' \
        in html
    assert '<p class="field-error" id="field-label_quota-error-1">' \
        "标签配额须大于 0 且不超过按产量核定的上限</p>" in html
    assert api.get(f"/tasks/{task['id']}", "market")["state"] == "open"

    fixed = client.post(f"/tasks/{task['id']}", data={
        "label_quota": "20000", "royalty_basis_points": "30", "csrf_token": csrf_of(page)})
    assert fixed.status_code == 422 and "field-royalty_basis_points-error" not in fixed.text
    assert "field-label_quota-error-1" in fixed.text


def test_the_api_gives_the_quota_and_the_rate_errors_at_once(api):
    case = _licence_case(api)
    complete(api, "quality", case, "verify_quality",
             {"certificate_ok": True, "standard_ok": True, "quality_comment": "合格"})
    task = the_task(api, "market", case, "fix_quota")

    body = api.post(f"/tasks/{task['id']}/complete", "market",
                    {"data": {"label_quota": 20000, "royalty_basis_points": 20000}}, expect=422)

    assert set(body["error"]["fields"]) == {"label_quota", "royalty_basis_points"}
    assert body["error"]["fields"]["label_quota"] == ["标签配额须大于 0 且不超过按产量核定的上限"]
