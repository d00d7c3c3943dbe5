"""The leadership dashboard in Chromium: every chart drawn by ECharts on a canvas, no JS errors."""

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_admission_browser import Person


def _scan(page, base, licence_code, lat, lng):
    response = page.request.get(f"{base}/api/v1/verify/{licence_code}?lat={lat}&lng={lng}")
    assert response.ok


def test_dashboard_draws_every_chart(app, live_server, browser):
    app.config["PUBLIC_RATE_LIMIT"] = "100000 per minute"
    leadership = Person(browser, live_server, "leadership")
    page = leadership.page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # Something on every chart that has a source: a counterfeit scan in 平原镇, a complaint.
    _scan(page, live_server, "NOT-A-CODE", "24.7101", "97.9402")
    response = page.request.post(f"{live_server}/api/v1/complaints", data={
        "complainant_name": "王丽", "complainant_phone": "13912345678",
        "product": "tea", "purchase_place": "盈江县城", "purchased_on": "2026-09-20",
        "description": "茶叶受潮结块。", "claimed_fen": 10_000})
    assert response.status == 201, response.text()

    page.click("header >> text=领导驾驶舱")
    expect(page.locator("h1")).to_have_text("领导驾驶舱")
    expect(page.locator("html")).to_have_attribute("data-charts-drawn", re.compile(r"\d+"))

    drawn = int(page.locator("html").get_attribute("data-charts-drawn"))
    charts = page.locator("div.chart")
    assert drawn == charts.count() > 0
    for index in range(charts.count()):
        expect(charts.nth(index).locator("canvas").first).to_be_visible()
    # Charts with data on a fresh system: deposits (ent-b's opening balance), scans, the map,
    # complaints, open cases (the complaint's acceptance task).
    for key in ("deposits", "scans", "scan_map", "complaints_by_product", "open_cases"):
        expect(page.locator(f"#chart-{key} canvas").first).to_be_visible()
    expect(page.locator("#card-scan_map")).to_contain_text("示意图")

    with page.expect_download() as download:
        page.click("#card-complaints_by_product >> text=下载 CSV")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("产品,投诉数")
    assert "茶叶,1" in text
    assert errors == []
    leadership.close()
