"""Sessions and headers: security headers on every response, cookie flags, HSTS in
production only, and the limit on failed sign-ins (form and API token together)."""

import re

import pytest

from config import SettingsError, load_settings
from engine import accounts
from web import create_app
from web.extensions import db
from web.security import CONTENT_SECURITY_POLICY


def csrf_token(client):
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, username, password="demo", address="192.0.2.10"):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)},
                       environ_overrides={"REMOTE_ADDR": address})


def ask_token(client, username, password="demo", address="192.0.2.10"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_overrides={"REMOTE_ADDR": address})


def cookie_flags(response, name="session"):
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))
    return {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}


# -- headers -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/brand/", "/api/v1/openapi.json", "/V/NOTACODE",
                                  "/static/js/brand-common.js", "/no-such-page",
                                  "/complaints/new"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()

    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers      # not in test mode


def test_the_policy_runs_only_this_sites_scripts_and_forbids_framing(client):
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))

    assert policy["script-src"] == "'self'"            # no inline script, no eval
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"


def test_no_template_has_an_inline_script_or_event_handler():
    """Under this policy a browser would refuse to run them: every script is a file, and a
    ``<script>`` block in a template may only carry JSON data."""
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "web" / "templates"
    offenders = []
    for path in templates.rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{path.name}: {tag}")
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offenders += [f"{path.name}: javascript: URL" for _ in re.findall(r"javascript:", text)]
    assert not offenders


def test_the_verify_page_asks_for_the_position_with_its_own_script_file(client):
    page = client.get("/V/NOTACODE")

    assert page.status_code == 200
    assert '<script src="/static/js/verify-locate.js' in page.text
    script = client.get("/static/js/verify-locate.js")
    script.close()
    assert script.status_code == 200


# -- cookies -------------------------------------------------------------------------------

def test_the_session_cookie_is_http_only_and_same_site_lax(client):
    response = sign_in(client, "market")

    assert response.status_code == 302
    flags = cookie_flags(response)
    assert "httponly" in flags
    assert flags["samesite"] == "SameSite=Lax"
    assert "secure" not in flags                    # test mode serves plain HTTP


@pytest.fixture
def production_app(database_url):
    app = create_app({"MODE": "production", "DATABASE_URL": database_url, "SCHEDULER": False,
                      "SECRET_KEY": "production-secret", "HSTS_MAX_AGE": 600})
    with app.app_context():
        db.create_all()
        accounts.create_user("keeper", "a long passphrase", "值班员", groups=["office"])
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_production_cookies_are_secure_and_https_is_pinned(production_app):
    client = production_app.test_client()
    response = sign_in(client, "keeper", "a long passphrase")

    assert response.status_code == 302
    flags = cookie_flags(response)
    assert {"secure", "httponly"} <= set(flags)
    assert flags["samesite"] == "SameSite=Lax"
    assert production_app.config["REMEMBER_COOKIE_SECURE"] is True
    assert production_app.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert production_app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert response.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"


def test_secure_cookies_can_be_asked_for_outside_production(database_url):
    settings = load_settings({"MODE": "demo", "DATABASE_URL": database_url},
                             environ={"BRAND_SECURE_COOKIES": "1"})
    assert settings["SECURE_COOKIES"] is True
    assert load_settings({"MODE": "demo"}, environ={})["SECURE_COOKIES"] is False
    assert load_settings({"MODE": "production", "SECRET_KEY": "k"},
                         environ={})["SECURE_COOKIES"] is True


# -- failed sign-ins -----------------------------------------------------------------------

@pytest.fixture
def login_limit(app):
    """The limit on, at three failures a minute (it is off for the rest of the suite)."""
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    return app


def test_the_login_limit_is_off_in_test_mode_on_elsewhere_and_checked():
    assert load_settings({"MODE": "test"}, environ={})["LOGIN_RATE_LIMIT"] == ""
    assert load_settings({"MODE": "demo"}, environ={})["LOGIN_RATE_LIMIT"] == (
        "10 per minute;50 per hour")
    assert load_settings({"MODE": "test"}, environ={"BRAND_LOGIN_RATE_LIMIT": "5 per minute"})[
        "LOGIN_RATE_LIMIT"] == "5 per minute"
    with pytest.raises(SettingsError, match="BRAND_LOGIN_RATE_LIMIT"):
        load_settings({"MODE": "demo"}, environ={"BRAND_LOGIN_RATE_LIMIT": "lots"})


def test_guessing_passwords_in_the_form_ends_in_a_page_saying_to_wait(client, login_limit):
    for _ in range(3):
        assert sign_in(client, "market", "guess").status_code == 401

    response = sign_in(client, "market", "guess")
    assert response.status_code == 429
    assert "text/html" in response.content_type
    assert "登录失败次数过多" in response.text and "分钟后再试" in response.text
    assert 'name="username"' in response.text              # the form is still there
    assert 0 < int(response.headers["Retry-After"]) <= 60

    # Even the right password waits now: the limit is checked before the password.
    assert sign_in(client, "market").status_code == 429


def test_guessing_through_the_api_gets_a_json_429(client, login_limit):
    for _ in range(3):
        assert ask_token(client, "finance", "guess").status_code == 401

    response = ask_token(client, "finance", "guess")
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == "too_many_login_attempts"
    assert "登录失败次数过多" in error["message"]
    assert "Retry-After" in response.headers


def test_the_form_and_the_api_share_one_budget(client, login_limit):
    sign_in(client, "quality", "guess")
    ask_token(client, "quality", "guess")
    sign_in(client, "quality", "guess")

    assert ask_token(client, "quality", "guess").status_code == 429


def test_one_username_is_limited_from_many_addresses(client, login_limit):
    for n in range(3):
        assert ask_token(client, "leadership", "guess", f"198.51.100.{n}").status_code == 401

    assert ask_token(client, "leadership", "demo", "198.51.100.77").status_code == 429
    # Another user from a fresh address is not affected.
    assert ask_token(client, "office", "demo", "198.51.100.78").status_code == 200


def test_one_address_is_limited_across_usernames(client, login_limit):
    for name in ("nobody-1", "nobody-2", "nobody-3"):
        assert ask_token(client, name, "guess", "203.0.113.5").status_code == 401

    assert ask_token(client, "market", "demo", "203.0.113.5").status_code == 429
    assert ask_token(client, "market", "demo", "203.0.113.6").status_code == 200


def test_successful_sign_ins_never_count(client, login_limit):
    for _ in range(10):
        assert ask_token(client, "market").status_code == 200
        assert sign_in(client, "market").status_code == 302


def test_odd_login_bodies_are_refused_not_crashed_under_the_limit(client, login_limit):
    odd = [client.post("/api/v1/auth/token", data="[1,2]", content_type="application/json"),
           client.post("/api/v1/auth/token", json={"username": 5, "password": None}),
           client.post("/api/v1/auth/token", json={"username": "x" * 100_000, "password": "p"}),
           client.post("/api/v1/auth/token", data="{bad", content_type="application/json")]
    assert [r.status_code for r in odd[:3]] == [400, 422, 401]
    assert odd[3].status_code == 429                   # the fourth failure from one address
    assert all(r.get_json()["error"]["code"] for r in odd)
