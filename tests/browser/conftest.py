"""A live server on a free port and Debian's Chromium, driven by Playwright.

Skipped unless ``BRAND_BROWSER_TESTS=1`` (``make test-browser``); the browser is
``/usr/bin/chromium`` (override with ``BRAND_CHROMIUM``), never a downloaded one.
"""

import os
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("BRAND_CHROMIUM", "/usr/bin/chromium")

if os.environ.get("BRAND_BROWSER_TESTS") != "1":
    pytest.skip("browser tests run with BRAND_BROWSER_TESTS=1 (make test-browser)",
                allow_module_level=True)


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()
