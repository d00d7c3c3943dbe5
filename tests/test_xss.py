"""HTML in user text is escaped everywhere it is shown.

Every writable text field of every form a case reaches (read from ``forms/*.json``) is
filled with a script tag, or with a payload that breaks out of an HTML attribute, while
admission, licence grant, complaint (with the deposit freeze it starts) and expulsion
cases run to their end through the JSON API. Then every page that shows that text (the
task pages on the way, case pages, inboxes, the portal, notices and their feed, the
complaint status page, the verify page's trace) must never contain the payload raw.
"""

import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from test_admission import APPLICATION as ADMISSION
from test_admission import the_task
from test_complaints import COMPLAINT
from test_labels import batch_urls, code_of, issue
from test_licences import APPLICATION as LICENCE

from engine import notices
from engine.models import User
from web.extensions import db

FORMS = Path(__file__).resolve().parent.parent / "forms"
PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']

REACHED = {"admission_apply", "admission_completeness", "admission_supplement",
           "admission_quality_review", "admission_finance_review", "admission_deposit_payment",
           "admission_deposit_confirm", "licence_apply", "licence_quality", "licence_sign",
           "complaint_file", "complaint_accept", "complaint_investigate", "complaint_sampling",
           "complaint_adjudicate", "deposit_settle", "deposit_settle_confirm",
           "expulsion_start", "expulsion_review", "expulsion_statement", "expulsion_decision"}

# Forms no case of this test reaches: royalty cases are opened by the scheduler for a
# period that has ended, the deposit top-up only after a deduction, suspect-label reviews
# after copied scans, overdue escalations after a missed deadline.
NOT_REACHED = {"royalty_check", "royalty_declare", "royalty_leadership_decision",
               "royalty_pay", "royalty_payment_confirm", "deposit_top_up",
               "deposit_top_up_confirm", "deposit_leadership_decision", "deposit_freeze_start",
               "suspect_label_review", "overdue_escalation", "admission_leadership"}


def writable_text_fields(form):
    definition = json.loads((FORMS / f"{form}.json").read_text())
    return [f["name"] for f in definition["fields"]
            if f["type"] in ("string", "text") and not f.get("readonly")]


def forms_with_text():
    return {path.stem for path in FORMS.glob("*.json") if writable_text_fields(path.stem)}


class Run:
    """One payload through every case: fills forms, and checks each page it fetches."""

    def __init__(self, app, api, payload):
        self.app, self.api, self.payload = app, api, payload
        self.web = {}
        self.filled = set()
        self.pages = 0
        self.shown = 0

    def hostile(self, form, keep=(), **data):
        """``data`` with the payload in every writable text field of ``form``."""
        values = dict(data)
        for name in writable_text_fields(form):
            if name not in keep:
                values[name] = self.payload
        self.filled.add(form)
        return values

    def client(self, username):
        if username not in self.web:
            client = self.app.test_client()
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            response = client.post("/login", data={"username": username, "password": "demo",
                                                   "csrf_token": token})
            assert response.status_code == 302, username
            self.web[username] = client
        return self.web[username]

    def check(self, url, username=None):
        """Fetch a page as ``username`` (anonymous: None): never the payload unescaped."""
        client = self.client(username) if username else self.app.test_client()
        response = client.get(url)
        assert response.status_code == 200, (url, username, response.status_code)
        text = response.get_data(as_text=True)
        self.pages += 1
        for raw in (self.payload, "<script>alert", "<img src=x"):
            assert raw not in text, (url, username, raw)
        if str(escape(self.payload)) in text:
            self.shown += 1
        return text

    def fill(self, user, case, spec, form, keep=(), **data):
        """Complete the open task ``spec`` with hostile text, after checking its page."""
        task = self.api.get(f"/tasks/{the_task(self.api, user, case, spec)['id']}", user)
        assert task["form"]["name"] == form, (spec, task["form"]["name"])
        self.check(f"/tasks/{task['id']}", user)
        self.api.post(f"/tasks/{task['id']}/complete", user,
                      {"data": self.hostile(form, keep, **data)})
        return task["id"]


def admission(run):
    api = run.api
    case = api.post("/processes/admission_review/instances", "ent-a",
                    {"data": run.hostile("admission_apply", **ADMISSION)}, expect=201)["id"]
    run.fill("market", case, "completeness_check", "admission_completeness",
             completeness_decision="supplement")
    run.fill("ent-a", case, "supplement", "admission_supplement")
    run.fill("market", case, "completeness_check", "admission_completeness",
             completeness_decision="complete")
    run.fill("quality", case, "quality_review", "admission_quality_review", quality_ok=True)
    run.fill("finance", case, "finance_review", "admission_finance_review", finance_ok=True,
             capital_verified_fen=200_000_000)
    run.check(f"/tasks/{the_task(api, 'market', case, 'scoring')['id']}", "market")
    api.post(f"/tasks/{the_task(api, 'market', case, 'scoring')['id']}/complete", "market",
             {"data": {"score_innovation": 20, "score_channels": 20, "score_experience": 20,
                       "score_finance": 20}})
    run.fill("ent-a", case, "pay_deposit", "admission_deposit_payment",
             paid_amount_fen=5_000_000, paid_on="2026-11-03")
    run.fill("finance", case, "confirm_deposit", "admission_deposit_confirm",
             deposit_received=True)
    assert api.get(f"/instances/{case}", "ent-a")["enterprise_status"] == "admitted"
    return case


def licence(run):
    api = run.api
    case = api.post("/processes/licence_grant/instances", "ent-b", {"data": run.hostile(
        "licence_apply", keep=("certificate_number",), **LICENCE)}, expect=201)["id"]
    run.fill("quality", case, "verify_quality", "licence_quality", certificate_ok=True,
             standard_ok=True)
    api.post(f"/tasks/{the_task(api, 'market', case, 'fix_quota')['id']}/complete", "market",
             {"data": {"label_quota": 100}})
    run.fill("office", case, "sign", "licence_sign", sign_decision="sign")

    licence_id = api.get("/licences", "ent-b")["items"][0]["id"]
    batch = issue(api, licence_id, 2)["id"]
    api.post(f"/licences/{licence_id}/trace-events", "ent-b",
             {"kind": "harvest", "occurred_at": "2026-10-01 08:00", "place": run.payload,
              "note": run.payload}, expect=201)
    code = code_of(batch_urls(api.client, api, batch)[0])
    run.check(f"/V/{code}?geo=0")
    run.check(f"/portal/licences/{licence_id}", "ent-b")
    return case


def complaint(run, enterprise_id):
    api = run.api
    filed = api.client.post("/api/v1/complaints",
                            json=run.hostile("complaint_file", **COMPLAINT))
    assert filed.status_code == 201, filed.get_json()
    reference = filed.get_json()["reference"]
    case = next(c["instance_id"] for c in api.get("/complaints", "protection")["items"]
                if c["reference"] == reference)

    run.fill("protection", case, "acceptance", "complaint_accept", accept_decision="accept",
             enterprise_id=enterprise_id)
    run.fill("protection", case, "investigation", "complaint_investigate",
             sampling_needed=True)
    run.fill("quality", case, "sampling", "complaint_sampling", sample_result="fail")
    run.fill("protection", case, "adjudication", "complaint_adjudicate", verdict="at_fault",
             awarded_fen=10_000)
    run.check(f"/complaints/{reference}")

    dispute = api.get(f"/enterprises/{enterprise_id}/deposit", "finance")["disputes"][0]
    freeze = dispute["instance_id"]
    run.fill("ent-b", freeze, "settlement", "deposit_settle", settled_on="2026-11-05")
    run.fill("finance", freeze, "settlement_check", "deposit_settle_confirm",
             settlement_received=True)
    return [case, freeze]


def expulsion(run, enterprise_id):
    api = run.api
    case = api.post("/processes/expulsion/instances", "protection", {"data": run.hostile(
        "expulsion_start", enterprise_id=enterprise_id, grounds="quality_harm")},
        expect=201)["id"]
    run.fill("general", case, "general_review", "expulsion_review", review_decision="proceed")
    run.fill("ent-b", case, "submit_statement", "expulsion_statement")
    run.fill("leadership", case, "leadership_decision", "expulsion_decision",
             decision="approve")
    return case


@pytest.mark.parametrize("payload", PAYLOADS, ids=["script-tag", "attribute-break"])
def test_hostile_text_in_every_form_is_escaped_on_every_page(app, client, api, payload):
    app.config["RATELIMIT_ENABLED"] = False
    run = Run(app, api, payload)
    with app.app_context():
        ent_b = db.session.query(User).filter_by(username="ent-b").one().enterprise_id
        office = db.session.query(User).filter_by(username="office").one()
        notice = notices.publish_announcement(office, payload, payload).id
        db.session.commit()

    cases = [admission(run), licence(run), *complaint(run, ent_b), expulsion(run, ent_b)]

    for case in cases:
        for user in ("office", "leadership", "protection", "market", "ent-b", "ent-a"):
            if run.client(user).get(f"/cases/{case}").status_code == 200:
                run.check(f"/cases/{case}", user)
    for user in ("market", "quality", "finance", "protection", "leadership", "office",
                 "general", "ent-a", "ent-b"):
        run.check("/inbox", user)
    for user in ("ent-a", "ent-b"):
        run.check("/portal/", user)
    for url in ("/notices", f"/notices/{notice}", "/notices.atom", "/brand/"):
        run.check(url)
    notices_shown = [n["id"] for n in api.get("/notices", "office")["items"]]
    for notice_id in notices_shown:
        run.check(f"/notices/{notice_id}")
    for url in ("/cases", "/complaints", "/finance/deposits"):
        run.check(url, "office")

    # Every form with writable text that these cases reach was filled, and the payload was
    # shown (escaped) on many of the pages checked: the check looked at real text.
    assert run.filled == REACHED
    assert REACHED | NOT_REACHED <= forms_with_text()
    assert run.shown >= 20, (run.shown, run.pages)
