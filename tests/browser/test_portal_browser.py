"""The public portal on a phone, and an expulsion started and reviewed in the staff pages."""

from playwright.sync_api import expect

from tests.browser.test_admission_browser import Person


def test_portal_on_a_phone_without_login(live_server, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(f"{live_server}/brand/")
    expect(page.locator("h1")).to_have_text("盈江县区域公共品牌")

    page.click("text=品牌故事 >> nth=-1")
    expect(page.locator("h1")).to_have_text("品牌故事")
    page.click(".site-nav >> text=零售网点")
    expect(page.locator(".card").first).to_contain_text("盈江县城旗舰店")
    page.click(".site-nav >> text=授权企业")
    expect(page.locator("h1")).to_have_text("授权企业与产品")
    page.click(".site-nav >> text=公示")
    expect(page.locator("h1")).to_have_text("公示")

    page.click(".site-nav >> text=标签查验")
    page.fill("#code", "AAAA")
    page.click("button:has-text('查验')")
    expect(page.locator("main")).to_contain_text("假冒", timeout=10_000)
    assert "/V/AAAA" in page.url
    context.close()


def test_protection_starts_an_expulsion_and_general_reviews_it(live_server, browser):
    protection = Person(browser, live_server, "protection")
    page = protection.page
    page.click("header >> text=发起清退")
    page.fill("#field-enterprise_id", "2")
    page.select_option("#field-grounds", "quality_harm")
    page.fill("#field-evidence", "抽检农残超标")
    page.click("button:has-text('发起清退')")
    expect(page.locator(".flash")).to_contain_text("强制清退案件已发起")

    general = Person(browser, live_server, "general")
    task = general.open_task("清退案件审查")
    expect(task.locator("main")).to_contain_text("抽检农残超标")
    task.select_option("#field-review_decision", "proceed")
    task.fill("#field-review_comment", "事实清楚")
    general.submit()

    # The hearing: the enterprise finds the statement task on its portal.
    enterprise = Person(browser, live_server, "ent-b")
    enterprise.page.goto(f"{live_server}/portal/")
    expect(enterprise.page.locator("main")).to_contain_text("提交陈述申辩")
