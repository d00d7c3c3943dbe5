"""The Content-Security-Policy breaks nothing: the modeler (diagram and decision table),
the dashboard and the verify page run under it without a single violation."""

import re

from playwright.sync_api import expect

from web.security import CONTENT_SECURITY_POLICY


def watched_page(browser, violations):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1500, "height": 950},
                                  geolocation={"latitude": 24.7, "longitude": 97.9},
                                  permissions=["geolocation"])
    page = context.new_page()
    # Chromium reports every refused script, style, eval or image on the console.
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: violations.append(str(exc)))
    return page


def sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_be_visible()


def test_modeler_dashboard_and_verify_page_run_under_the_policy(live_server, browser):
    violations = []
    page = watched_page(browser, violations)

    response = page.goto(f"{live_server}/login")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    sign_in(page, live_server, "office")
    page.goto(f"{live_server}/admin/processes")
    page.locator("#process-admission_review").get_by_role(
        "link", name="在建模器中修改").click()
    expect(page.locator("#canvas")).to_have_attribute(
        "data-rendered", re.compile(r"^[1-9][0-9]{2,}$"))
    page.locator('#canvas .djs-element[data-element-id="quality_review"]').click()
    expect(page.locator("#panel").get_by_label("办理期限")).to_have_value("5WD")
    page.get_by_role("button", name="决策表").click()
    expect(page.locator("#dmn-canvas .tjs-table")).to_be_visible()

    page.goto(f"{live_server}/dashboard")
    expect(page.locator("canvas").first).to_be_visible()

    # The verify page asks for the position with its script file, then reloads with it.
    page.goto(f"{live_server}/V/NOTACODE")
    page.wait_for_url(re.compile(r"lat=24\.7000&lng=97\.9000"))
    expect(page.locator("body")).to_contain_text("假冒")

    assert violations == []
