"""Licence grant in a real browser, then a label printed and verified by "a phone"."""

from playwright.sync_api import expect

from tests.browser.test_admission_browser import Person


def test_licence_granted_labels_issued_and_verified(live_server, browser):
    enterprise = Person(browser, live_server, "ent-b")
    page = enterprise.page
    page.goto(f"{live_server}/portal/")
    page.click("text=申请品牌授权")
    page.select_option("#field-product", "black_cardamom")
    page.select_option("#field-grade", "green")
    page.fill("#field-certificate_number", "LB-53-2612-0001")
    page.fill("#field-base_location", "铜壁关乡")
    page.fill("#field-base_area_mu", "500")
    page.fill("#field-yield_kg_per_mu", "80")
    page.fill("#field-package_kg", "0.5")
    page.click("button:has-text('提交申请')")
    expect(page.locator(".flash")).to_contain_text("申请已提交")

    quality = Person(browser, live_server, "quality")
    task = quality.open_task("证书与质量标准核验")
    task.check("#field-certificate_ok-true")
    task.check("#field-standard_ok-true")
    task.fill("#field-quality_comment", "证书有效，符合绿色食品标准")
    quality.submit()

    market = Person(browser, live_server, "market")
    task = market.open_task("核定标签配额")
    expect(task.locator("#field-max_quota")).to_contain_text("80000")
    task.fill("#field-label_quota", "90000")
    task.click("form button[type=submit]:has-text('提交')")
    expect(task.locator(".error, .field-error").first).to_be_visible()
    task.fill("#field-label_quota", "60000")
    market.submit()

    office = Person(browser, live_server, "office")
    task = office.open_task("签发品牌授权")
    task.select_option("#field-sign_decision", "sign")
    office.submit()

    page.goto(f"{live_server}/portal/licences")
    page.locator("tbody a").first.click()
    page.fill("input[name=count]", "10")
    page.click("button:has-text('发放')")
    csv_link = page.get_by_role("link", name="CSV").first
    response = page.request.get(live_server + csv_link.get_attribute("href"))
    urls = [line for line in response.text().splitlines() if "/V/" in line.upper()]
    assert len(urls) == 10

    phone = browser.new_context(locale="zh-CN", geolocation=None).new_page()
    label_url = live_server + "/V/" + urls[0].rsplit("/", 1)[-1].strip().strip('"')
    for expected_count in ("1", "2"):
        phone.goto(label_url + "?geo=0")
        expect(phone.locator("#verify-status")).to_have_attribute("data-status", "genuine")
        expect(phone.locator("#scan-count")).to_have_text(expected_count)
    for person in (enterprise, quality, market, office):
        person.close()
