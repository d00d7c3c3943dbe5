"""The approve path of admission review in a real browser: every department clears its inbox."""

import re

from playwright.sync_api import expect


class Person:
    """One user's browser session."""

    def __init__(self, browser, base, username):
        self.context = browser.new_context(locale="zh-CN")
        self.page = self.context.new_page()
        self.base = base
        page = self.page
        page.goto(f"{base}/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "demo")
        page.click("button[type=submit]")
        expect(page.locator("header .who")).to_be_visible()

    def open_task(self, name):
        page = self.page
        page.goto(f"{self.base}/inbox")
        page.get_by_role("link", name=name).first.click()
        expect(page.locator("h1")).to_have_text(name)
        return page

    def submit(self):
        self.page.click("form button[type=submit]:has-text('提交')")
        expect(self.page.locator(".flash").first).to_contain_text("任务已办结")

    def close(self):
        self.context.close()


def test_enterprise_is_admitted_in_the_browser(live_server, browser):
    enterprise = Person(browser, live_server, "ent-a")
    page = enterprise.page
    page.goto(f"{live_server}/portal/")
    page.click("text=申请准入")
    page.fill("#field-enterprise_name", "盈江县芒允茶业有限公司")
    page.select_option("#field-kind", "processor")
    page.check("#field-products-tea")
    page.fill("#field-base_location", "芒允乡")
    page.fill("#field-base_area_mu", "120.5")
    page.fill("#field-registered_capital_fen", "2000000")
    page.fill("#field-employees", "40")
    page.fill("#field-contact_name", "李明")
    page.fill("#field-contact_phone", "13800000000")
    for field in ("innovation", "channels", "experience", "finance"):
        page.fill(f"#field-{field}", "说明材料")
    page.click("button:has-text('提交申请')")
    expect(page.locator(".flash")).to_contain_text("申请已提交")
    expect(page.locator("#enterprise-status")).to_have_text("审核中")

    market = Person(browser, live_server, "market")
    task = market.open_task("材料完整性审查")
    task.select_option("#field-completeness_decision", "complete")
    market.submit()

    quality = Person(browser, live_server, "quality")
    task = quality.open_task("质量审查")
    task.check("#field-quality_ok-true")
    task.fill("#field-quality_comment", "绿色食品证书有效")
    quality.submit()

    finance = Person(browser, live_server, "finance")
    task = finance.open_task("财务审查")
    task.check("#field-finance_ok-true")
    task.fill("#field-capital_verified_fen", "2000000")
    task.fill("#field-finance_comment", "资金状况良好")
    finance.submit()

    task = market.open_task("四项能力评分")
    for field in ("innovation", "channels", "experience", "finance"):
        task.fill(f"#field-score_{field}", "20")
    market.submit()

    page.goto(f"{live_server}/portal/")
    expect(page.get_by_text(re.compile("应缴履约保证金"))).to_contain_text("¥50,000.00")
    page.get_by_role("link", name="缴纳履约保证金").click()
    page.fill("#field-paid_amount_fen", "50000")
    page.fill("#field-paid_on", "2026-12-04")
    page.fill("#field-payment_reference", "YJ-2026-0001")
    enterprise.submit()

    task = finance.open_task("确认保证金到账")
    task.check("#field-deposit_received-true")
    finance.submit()

    page.goto(f"{live_server}/portal/")
    expect(page.locator("#enterprise-status")).to_have_text("已准入")
    for person in (enterprise, market, quality, finance):
        person.close()
