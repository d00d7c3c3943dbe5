"""Hostile input: bodies too large, malformed JSON and forms, hostile XML uploads, label
codes of any length or alphabet. None of it may end in a 500; each gets a clear refusal.

The routes come from the isolation table (``tests/test_isolation.py``): every write route
of the application is tried with the ids of real seeded cases, as an actor it allows.
"""

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_complaints import COMPLAINT
from test_isolation import USERNAMES, Actor, probes, url_for_probe, world  # noqa: F401

BPMN = (Path(__file__).resolve().parent.parent / "bpmn" / "admission_review.bpmn").read_bytes()


def login_form_token(client):
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def api_headers(api, user):
    return {"Authorization": f"Bearer {api.token(user)}"}


def error_of(response):
    body = response.get_json()
    assert isinstance(body, dict) and "error" in body, response.get_data(as_text=True)[:300]
    return body["error"]


# -- bodies too large ------------------------------------------------------------------------------

@pytest.fixture
def small_limit(app):
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    return 64 * 1024


def test_an_oversized_json_body_is_refused_with_413_and_the_limit(client, small_limit):
    big = json.dumps(dict(COMPLAINT, description="很" * small_limit))
    response = client.post("/api/v1/complaints", data=big, content_type="application/json")

    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_entity_too_large"
    assert error["limit"] == small_limit
    assert "64 KB" in error["message"]


def test_an_oversized_body_without_a_length_is_refused_too(client, small_limit):
    """A chunked body names no length: it is cut off at the limit while being read."""
    import io

    body = io.BytesIO(json.dumps({"description": "x" * (2 * small_limit)}).encode())
    response = client.post("/api/v1/complaints", input_stream=body,
                           content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"},
                           # What gunicorn and werkzeug's own server say of a chunked body.
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"


def test_an_oversized_form_post_is_refused_with_a_page_saying_so(client, small_limit):
    token = login_form_token(client)
    response = client.post("/complaints/new", data=dict(
        COMPLAINT, description="x" * (2 * small_limit), csrf_token=token))

    assert response.status_code == 413
    assert "text/html" in response.content_type
    assert "上传内容过大" in response.text and "64 KB" in response.text


def test_an_oversized_bpmn_upload_is_refused(client, api, small_limit):
    padded = BPMN.replace(b"</bpmn:definitions>",
                          b"<!--" + b"x" * (2 * small_limit) + b"--></bpmn:definitions>")
    for kwargs in ({"data": padded, "content_type": "application/xml"},
                   {"data": {"file": (__import__("io").BytesIO(padded), "big.bpmn"),
                             "reason": "too big"},
                    "content_type": "multipart/form-data"}):
        response = client.post("/api/v1/processes/admission_review/versions?reason=big",
                               headers=api_headers(api, "office"), **kwargs)
        assert response.status_code == 413, kwargs["content_type"]
        assert error_of(response)["code"] == "request_entity_too_large"


def test_the_default_limit_is_the_documented_five_mebibytes(app, client):
    assert app.config["MAX_CONTENT_LENGTH"] == 5 * 1024 * 1024
    response = client.post("/api/v1/complaints", data=b"x" * (5 * 1024 * 1024 + 1),
                           content_type="application/json")
    assert response.status_code == 413


# -- malformed JSON on every API write route -------------------------------------------------------

MALFORMED_JSON = [
    b"{not json", b"", b"[1, 2]", b"null", b'"text"', b"42", b"\xff\xfe\x00",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a": ' * 20_000 + b"1" + b"}" * 20_000,
    json.dumps({"data": "not an object"}).encode(),
    json.dumps({"data": [1, 2]}).encode(),
    json.dumps({"data": {"x": {"y": [None, True, 1.5e308]}}, "count": -1}).encode(),
    json.dumps({"count": 10**40, "value": 10**40, "lock_version": 10**40,
                "from_version": 10**40, "files": {"a.bpmn": 1}, "reason": ["x"],
                "assignee": {"a": 1}, "delegate": [1], "duration": 10**40}).encode(),
    json.dumps({"enterprise_id": 10**30, "claimed_fen": 1e300, "purchased_on": "9999-99-99",
                "description": "\u0000" * 10, "complainant_name": "\ud800"}).encode(
                    "utf-8", "surrogatepass"),
]


def api_write_probes():
    for route, probe in probes():
        method, rule = route.split(" ", 1)
        if rule.startswith("/api/") and method in ("POST", "PUT", "DELETE"):
            yield route, probe


def test_malformed_json_on_every_api_write_route_gives_an_error_never_a_500(app, world):
    actors = {}
    wrong = []
    for route, probe in api_write_probes():
        # Send as an actor the route lets through, so that the body is actually read.
        name = next(iter(sorted(probe.allowed - {"anonymous"})), "anonymous")
        if name not in actors:
            actors[name] = Actor(app, name, USERNAMES.get(name, name))
        actor = actors[name]
        method, url = url_for_probe(route, probe, world)
        headers = {"Authorization": f"Bearer {actor.api_token}"} if actor.api_token else {}
        for body in MALFORMED_JSON:
            response = actor.web.open(url, method=method, data=body, headers=headers,
                                      content_type="application/json")
            status = response.status_code
            if status >= 500:
                wrong.append(f"{route} as {name}: {status} for {body[:40]!r}")
            elif status >= 400:
                error = error_of(response)
                if status == 422 and not isinstance(error.get("fields", {}), dict):
                    wrong.append(f"{route}: 422 without fields")
            response.close()
    assert not wrong, "\n".join(wrong)


def test_field_errors_name_the_fields(client, api):
    """Wrong types in a JSON body: 422 naming each wrong field, the others not."""
    body = dict(COMPLAINT, claimed_fen="350", purchased_on="yesterday", product="caviar")
    response = client.post("/api/v1/complaints", json=body)

    assert response.status_code == 422
    fields = error_of(response)["fields"]
    assert set(fields) == {"claimed_fen", "purchased_on", "product"}
    assert all(isinstance(m, str) and m for messages in fields.values() for m in messages)

    task = api.post("/processes/expulsion/instances", "protection",
                    {"data": {"enterprise_id": "two", "grounds": "quality_harm",
                              "evidence": "x" * 100_000, "attachments": 1}}, expect=422)
    assert {"enterprise_id", "evidence"} <= set(task["error"]["fields"])


# -- malformed form posts on every web write route ---------------------------------

def web_write_probes():
    for route, probe in probes():
        method, rule = route.split(" ", 1)
        if not rule.startswith("/api/") and method == "POST":
            yield route, probe


def hostile_forms(csrf):
    return [
        {"csrf_token": csrf},
        {"csrf_token": csrf, "count": "²", "day": "２０３１-05-07", "value": "nan",
         "enterprise_id": "9" * 40, "outlet_id": "-1", "corrects": "¹"},
        {"csrf_token": csrf, "title": "\x00\x01", "body": "\ud800".encode(
            "utf-8", "surrogatepass"), "name": "x" * 100_000, "text": "{" * 10_000,
         "key": "../../etc/passwd", "slug": "a" * 500, "reason": "\x00"},
        {"csrf_token": csrf, "products": ["tea"] * 500, "is_workday": ["true", "false"],
         "assignee": "\x00", "delegate": "9" * 30, "note": "x" * 200_000,
         "occurred_at": "2026-13-45 25:61", "kind": "harvest", "place": "\x7f"},
    ]


def test_malformed_form_posts_on_every_web_route_give_an_error_never_a_500(app, world):
    actors = {}
    wrong = []
    for route, probe in web_write_probes():
        if route == "POST /logout":
            continue
        name = next(iter(sorted(probe.allowed - {"anonymous"})), "anonymous")
        if name not in actors:
            actors[name] = Actor(app, name, USERNAMES.get(name, name))
        actor = actors[name]
        method, url = url_for_probe(route, probe, world)
        for form in hostile_forms(actor.csrf):
            response = actor.web.open(url, method=method, data=form)
            if response.status_code >= 500:
                wrong.append(f"{route} as {name}: {response.status_code} for {sorted(form)}")
            response.close()
        if route == "POST /login":
            actor.login() if actor.username else None
    assert not wrong, "\n".join(wrong)


# -- hostile XML uploads ---------------------------------------------

SECRET = Path("/etc/hostname")

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="admission_review" isExecutable="true" name="&secret;">
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"/>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="admission_review" isExecutable="true" name="&lol9;">
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>"""

# Quadratic blowup needs no nested entities: one large entity used many times.
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "' + b"a" * 50_000 + b'">]>'
             b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
             b'id="d"><bpmn:documentation>' + b"&a;" * 50_000
             + b"</bpmn:documentation></bpmn:definitions>")


def hostile_uploads(api, world):
    """(route, kwargs) for every way a diagram reaches the server."""
    office = api_headers(api, "office")
    for name, xml in (("xxe", XXE), ("parameter", XXE_PARAMETER), ("laughs", LAUGHS),
                      ("quadratic", QUADRATIC)):
        text = xml.decode()
        yield name, "POST", "/api/v1/processes/admission_review/versions?reason=x", dict(
            data=xml, content_type="application/xml", headers=office)
        yield name, "POST", "/api/v1/processes/admission_review/check", dict(
            data={"file": (__import__("io").BytesIO(xml), f"{name}.bpmn")},
            content_type="multipart/form-data", headers=office)
        yield name, "POST", "/api/v1/processes/admission_review/check", dict(
            json={"files": {f"{name}.dmn": text}}, headers=office)
        yield name, "POST", "/api/v1/processes/admission_review/drafts", dict(
            json={"files": {"admission_review.bpmn": text}}, headers=office)
        yield name, "PUT", f"/api/v1/drafts/{world['draft']}", dict(
            json={"files": {"admission_review.bpmn": text}}, headers=office)


def test_hostile_xml_is_refused_without_reading_files_or_expanding_entities(client, api, world):
    passwd = Path("/etc/passwd").read_text()
    first_line = passwd.splitlines()[0]
    for name, method, url, kwargs in hostile_uploads(api, world):
        response = client.open(url, method=method, **kwargs)
        text = response.get_data(as_text=True)

        assert response.status_code in (200, 201, 422), (name, url, response.status_code, text)
        assert first_line not in text, (name, url)
        # A draft keeps the text as typed (its 50,000 "a"s); nothing may come back expanded.
        assert "lollollol" not in text and "a" * 50_001 not in text, (name, url)
        body = response.get_json()
        problems = body.get("problems") or body.get("check", {}).get("problems") or \
            body.get("error", {}).get("problems") or []
        codes = {p.get("code") for p in problems}
        assert codes & {"xml_entities", "xml_malformed"}, (name, url, codes)
        # Nothing was deployed from it.
        versions = [v["version"] for p in api.get("/processes", "office")["items"]
                    if p["key"] == "admission_review" for v in p["versions"]]
        assert versions == [1], (name, url)


# -- label codes of any length or alphabet --------------------------

CODE_TEXT = st.one_of(
    st.text(min_size=0, max_size=400),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=100, max_size=130),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50),
    st.sampled_from(["%00", "..%2F..%2Fetc", "\x00", "A" * 10_000, "<script>", "'; --",
                     "\ufeff", "𝔸" * 120]),
)


@pytest.fixture
def unlimited(app):
    app.config["RATELIMIT_ENABLED"] = False
    return app


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(code=CODE_TEXT)
def test_any_label_code_gets_an_answer_never_a_500(unlimited, client, code):
    path = quote(code, safe="")
    # A code with a slash in it may be redirected to the URL with the slashes merged (308).
    api = client.get(f"/api/v1/verify/{path}?geo=0", follow_redirects=True)
    assert api.status_code in (200, 404), (code, api.status_code)
    if api.status_code == 200:
        assert api.get_json()["status"] in ("counterfeit", "genuine", "revoked", "suspect")

    page = client.get(f"/V/{path}?geo=0", follow_redirects=True)
    assert page.status_code in (200, 404), (code, page.status_code)
    assert "<script>" not in page.text

    entry = client.get("/brand/verify", query_string={"code": code})
    assert entry.status_code in (200, 302, 422), (code, entry.status_code)

    filed = client.post("/api/v1/complaints", json=dict(COMPLAINT, label_code=code))
    assert filed.status_code in (201, 422), (code, filed.status_code, filed.get_json())
    if filed.status_code == 422:
        assert set(error_of(filed)["fields"]) == {"label_code"}

    form_page = client.get("/complaints/new", query_string={"code": code})
    assert form_page.status_code == 200
    assert "<script>" not in form_page.text
