"""Policy staff revise admission review in the browser: modeler, deploy, case diagram, sandbox."""

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from engine import accounts, clock, serialization
from engine.models import Enterprise
from engine.workdays import add_working_days
from web.extensions import db

APPLICATION = {
    "enterprise_name": "盈江县芒允茶业有限公司", "kind": "processor", "products": ["tea"],
    "base_location": "芒允乡", "base_area_mu": "120.5", "registered_capital_fen": 200_000_000,
    "employees": 40, "contact_name": "李明", "contact_phone": "13800000000",
    "innovation": "自主研发", "channels": "直营店", "experience": "十年", "finance": "良好",
}


@pytest.fixture(autouse=True)
def fresh_spec_cache():
    serialization._specs.clear()
    yield
    serialization._specs.clear()


def sign_in(browser, base, username):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1500, "height": 950})
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()
    return page


def at_quality_review(api, username):
    instance_id = api.post("/processes/admission_review/instances", username,
                           {"data": APPLICATION}, expect=201)["id"]
    items = api.get("/tasks?per_page=200", "market")["items"]
    check = next(t for t in items if t["instance_id"] == instance_id)
    api.post(f"/tasks/{check['id']}/complete", "market",
             {"data": {"completeness_decision": "complete"}})
    items = api.get("/tasks?per_page=200", "quality")["items"]
    return instance_id, next(t for t in items if t["instance_id"] == instance_id
                             and t["task"] == "quality_review")


def working_days_after(task, days):
    created = datetime.fromisoformat(task["created_at"].rstrip("Z"))
    return add_working_days(created, days)[0].isoformat() + "Z"


def test_office_changes_a_due_period_in_the_modeler_and_deploys(app, live_server, browser, api):
    old_case, old_task = at_quality_review(api, "ent-a")

    page = sign_in(browser, live_server, "office")
    page.goto(f"{live_server}/admin/processes")
    page.locator("#process-admission_review").get_by_role(
        "link", name="在建模器中修改").click()
    canvas = page.locator("#canvas")
    expect(canvas).to_have_attribute("data-rendered", re.compile(r"^[1-9][0-9]{2,}$"))
    shape = page.locator('#canvas .djs-element[data-element-id="quality_review"]')
    expect(shape).to_be_visible()
    expect(page.locator('#canvas .djs-element[data-element-id="lane_quality"]')).to_be_visible()

    shape.click()
    due = page.locator("#panel").get_by_label("办理期限")
    expect(due).to_have_value("5WD")
    due.fill("7WD")
    due.press("Tab")
    expect(page.locator("#dirty")).to_be_visible()

    page.get_by_role("button", name="决策表").click()
    expect(page.locator("#dmn-canvas .tjs-table")).to_be_visible()
    page.get_by_role("button", name="流程图").click()

    page.fill("#reason", "质检审查期限延长至 7 个工作日")
    page.click("#deploy")
    expect(page.locator("#status")).to_contain_text("已部署为第 2 版")
    expect(page.locator("#problem-summary")).to_have_text("检查通过：没有发现问题")

    with app.app_context():
        enterprise = Enterprise(name="盈江县新茶厂", kind="processor", status="registered",
                                created_at=clock.now())
        db.session.add(enterprise)
        db.session.flush()
        accounts.create_user("ent-new", "demo", enterprise.name, groups=["enterprise"],
                             enterprise_id=enterprise.id)
        db.session.commit()
    new_case, new_task = at_quality_review(api, "ent-new")

    assert api.get(f"/instances/{old_case}", "office")["version"] == 1
    assert api.get(f"/instances/{new_case}", "office")["version"] == 2
    assert old_task["due_at"] == working_days_after(old_task, 5)
    assert new_task["due_at"] == working_days_after(new_task, 7)
    listing = api.get("/processes", "office")["items"]
    latest = next(p for p in listing if p["key"] == "admission_review")["versions"][0]
    assert latest["reason"] == "质检审查期限延长至 7 个工作日"

    # The case page draws the old case on its own version, the current step highlighted.
    page.goto(f"{live_server}/cases/{old_case}")
    active = page.locator('#case-diagram .djs-element.active[data-element-id="quality_review"]')
    expect(active).to_be_visible()
    expect(page.locator(
        '#case-diagram .djs-element.done[data-element-id="completeness_check"]')).to_be_visible()
    page.context.close()


def test_the_sandbox_runs_a_version_past_a_deadline(live_server, browser):
    page = sign_in(browser, live_server, "office")
    page.goto(f"{live_server}/admin/processes/admission_review/simulate")
    expect(page.locator("#sim-diagram")).to_have_attribute("data-rendered",
                                                          re.compile(r"^[1-9][0-9]+$"))

    page.click("#sim-start")
    task = page.locator('.sim-task[data-element="completeness_check"]')
    expect(task).to_be_visible()
    task.locator("textarea").fill('{"completeness_decision": "complete"}')
    task.get_by_role("button", name="办结").click()
    expect(page.locator('.sim-task[data-element="quality_review"]')).to_be_visible()

    page.fill("#advance-by", "P10D")
    page.click("#sim-advance")
    expect(page.locator('.sim-task[data-element="escalate_quality"]')).to_be_visible()
    expect(page.locator('#sim-path li[data-element="quality_overdue"]')).to_be_visible()
    expect(page.locator(
        '#sim-diagram .djs-element.active[data-element-id="escalate_quality"]')).to_be_visible()
    page.context.close()


def test_problems_are_listed_beside_the_diagram_and_marked_on_it(live_server, browser):
    page = sign_in(browser, live_server, "office")
    page.goto(f"{live_server}/admin/processes/admission_review/modeler")
    timer = page.locator('#canvas .djs-element[data-element-id="supplement_deadline"]')
    expect(timer).to_be_visible()
    timer.click(force=True)

    expression = page.locator("#panel").get_by_label("表达式（Python）")
    expect(expression).to_have_value("deadline_in_working_days(10)")
    expression.fill("P10D")
    expect(page.locator("#panel .field-error").filter(has_text="引号")).to_be_visible()
    expression.press("Tab")
    page.click("#save")

    problem = page.locator('#problem-list li.problem.error[data-element="supplement_deadline"]')
    expect(problem).to_contain_text("P10D")
    expect(page.locator("#problem-summary")).to_contain_text("错误 1")
    marked = '#canvas .djs-element.problem-error[data-element-id="supplement_deadline"]'
    expect(page.locator(marked)).to_be_visible()

    page.fill("#reason", "不应部署")
    page.click("#deploy")
    expect(page.locator("#status")).to_contain_text("无法部署")
    page.context.close()
