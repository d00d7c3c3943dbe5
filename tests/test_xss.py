"""HTML in user text is escaped everywhere it is shown.

Every writable text field of every form a case reaches (read from ``forms/*.json``) is
filled with a script tag, or with a payload that breaks out of an HTML attribute, while
admission (through the leadership), licence grant, complaint (with the deposit freeze it
starts) and expulsion cases run to their end through the JSON API. Then every page that
shows that text (the task pages on the way, case pages, inboxes, the portal, notices and
their feed, the complaint status page, the verify page's trace) must never contain the
payload raw.

A second test runs the cases the clock drives, on the virtual clock: a royalty quarter
(declared late, checked, escalated, extended, paid), a deposit freeze started by hand and
left unsettled (deducted, topped up short, escalated to the leadership), a label copied
past the scan threshold (the suspect-label review) and a failed sampling inspection (plan,
sampling, results, protection review), with the royalty, inspection, deposit and verify
pages checked the same way.
"""

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from markupsafe import escape
from test_admission import APPLICATION as ADMISSION
from test_admission import the_task
from test_complaints import COMPLAINT, set_clock
from test_labels import batch_urls, code_of, issue, verify
from test_licences import APPLICATION as LICENCE
from test_royalties import make_payer, open_quarter

from engine import clock, licensing, notices
from engine.models import User
from web.extensions import db

FORMS = Path(__file__).resolve().parent.parent / "forms"
PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']

REACHED = {"admission_apply", "admission_completeness", "admission_supplement",
           "admission_quality_review", "admission_finance_review", "admission_leadership",
           "admission_deposit_payment", "admission_deposit_confirm", "licence_apply",
           "licence_quality", "licence_sign", "complaint_file", "complaint_accept",
           "complaint_investigate", "complaint_sampling", "complaint_adjudicate",
           "deposit_settle", "deposit_settle_confirm", "expulsion_start", "expulsion_review",
           "expulsion_statement", "expulsion_decision"}

# Reached by the second test, on the virtual clock.
CLOCKED = {"royalty_declare", "royalty_check", "royalty_leadership_decision", "royalty_pay",
           "royalty_payment_confirm", "overdue_escalation", "deposit_freeze_start",
           "deposit_top_up", "deposit_top_up_confirm", "deposit_leadership_decision",
           "suspect_label_review", "inspection_plan", "inspection_sampling",
           "inspection_results", "inspection_protection"}


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

    def check(self, url, username=None, shown=False):
        """Fetch a page as ``username`` (anonymous: None): never the payload unescaped;
        with ``shown``, the page must show it escaped."""
        client = self.client(username) if username else self.app.test_client()
        response = client.get(url)
        assert response.status_code == 200, (url, username, response.status_code)
        text = response.get_data(as_text=True)
        self.pages += 1
        for raw in (self.payload, "<script>alert", "<img src=x"):
            assert raw not in text, (url, username, raw)
        if str(escape(self.payload)) in text:
            self.shown += 1
        else:
            assert not shown, (url, username, "the text is not shown")
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
    # A borderline total (60) goes to the leadership, whose comment is text too.
    api.post(f"/tasks/{the_task(api, 'market', case, 'scoring')['id']}/complete", "market",
             {"data": {"score_innovation": 15, "score_channels": 15, "score_experience": 15,
                       "score_finance": 15}})
    run.fill("leadership", case, "leadership_review", "admission_leadership",
             leadership_decision="approve")
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
    set_clock(app, datetime(2026, 11, 6, 2, 0))   # Friday 6 November 2026, 10:00 in Beijing
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
    assert REACHED | CLOCKED == forms_with_text()
    assert run.shown >= 20, (run.shown, run.pages)


# -- the cases the clock drives ----------------------------------------------------------------

def tasks_of(api, user, case):
    return [t["task"] for t in api.get("/tasks?per_page=200", user)["items"]
            if t["instance_id"] == case]


def advance_until(api, user, case, spec, limit=40):
    """Move the virtual clock a day at a time until ``spec`` is open for ``user``."""
    for _ in range(limit):
        if spec in tasks_of(api, user, case):
            return
        api.post("/clock/advance", "it", {"duration": "P1D"})
    raise AssertionError((spec, user, case, "never opened"))


def today(app):
    with app.app_context():
        return clock.today().isoformat()


def royalty(run, enterprise_id):
    """Q3 2026 of ent-r: declared late, checked, escalated unpaid, extended, paid."""
    api = run.api
    case = api.get(f"/enterprises/{enterprise_id}/royalties", "finance")["items"][0][
        "instance_id"]
    advance_until(api, "leadership", case, "declaration_supervision")
    run.fill("leadership", case, "declaration_supervision", "overdue_escalation")
    run.fill("ent-r", case, "declaration", "royalty_declare", declared_units=500,
             declared_sales_fen=100_000_000)
    run.fill("finance", case, "finance_check", "royalty_check", declaration_accepted=True)
    advance_until(api, "leadership", case, "royalty_decision")
    run.fill("leadership", case, "royalty_decision", "royalty_leadership_decision",
             royalty_decision="extend")
    run.fill("ent-r", case, "payment", "royalty_pay", paid_on=today(run.app))
    run.fill("finance", case, "payment_check", "royalty_payment_confirm",
             payment_received=True)
    assert api.get(f"/instances/{case}", "finance")["status"] == "completed"
    run.check("/royalties/", "finance")
    run.check(f"/royalties/enterprises/{enterprise_id}", "finance")
    run.check(f"/royalties/enterprises/{enterprise_id}", "ent-r")
    return case


def deposit_freeze(run, enterprise_id):
    """A freeze started by hand, not settled: deducted, topped up short, escalated."""
    api = run.api
    case = api.post("/processes/deposit_freeze/instances", "quality", {"data": run.hostile(
        "deposit_freeze_start", enterprise_id=enterprise_id, disputed_fen=50_000)},
        expect=201)["id"]
    advance_until(api, "ent-r", case, "top_up")
    run.fill("ent-r", case, "top_up", "deposit_top_up", top_up_paid_fen=10_000,
             top_up_paid_on=today(run.app))
    run.fill("finance", case, "top_up_check", "deposit_top_up_confirm", top_up_received=True,
             top_up_received_fen=10_000)
    advance_until(api, "leadership", case, "top_up_review")
    run.fill("leadership", case, "top_up_review", "deposit_leadership_decision",
             dispute_decision="warn")
    run.check(f"/finance/deposits/{enterprise_id}", "finance", shown=True)
    return case


def suspect_label(run, code):
    """One label scanned past the threshold: protection reviews the suspect case."""
    api = run.api
    api.call("PUT", "/rules/label.suspect_scan_count", "office", {"value": 3})
    for _ in range(4):
        verify(api.client, code)
    tasks = api.get("/tasks?process=suspect_label&per_page=200", "protection")["items"]
    assert len(tasks) == 1, tasks
    case = tasks[0]["instance_id"]
    run.fill("protection", case, "review", "suspect_label_review",
             review_decision="false_alarm")
    return case


def inspection(run, licence_id):
    """A sampling inspection that fails: the measured values are hostile text too."""
    api = run.api
    case = api.post("/processes/inspection/instances", "quality", {"data": run.hostile(
        "inspection_plan", licence_id=licence_id, target_kind="base", selection="manual")},
        expect=201)["id"]
    run.fill("quality", case, "sampling", "inspection_sampling", sampled_on=today(run.app))
    results = f"外观 | 合格 | {run.payload}\n农药残留 | 不合格 | {run.payload}"
    run.fill("quality", case, "results", "inspection_results", keep=("dimension_results",),
             dimension_results=results, lab_conclusion="fail", freeze_fen=10_000)
    run.fill("protection", case, "protection_review", "inspection_protection",
             protection_action="rectify")
    item = next(i for i in api.get("/inspections", "quality")["items"]
                if i["instance_id"] == case)
    assert [r["measured"] for r in item["results"]] == [run.payload, run.payload]
    assert item["report_ref"] == run.payload
    run.check("/inspections/", "quality", shown=True)
    run.check(f"/inspections/{item['id']}", "quality", shown=True)
    run.check(f"/inspections/{item['id']}", "protection", shown=True)
    return [case, item["dispute_instance_id"]]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["script-tag", "attribute-break"])
def test_hostile_text_in_the_clocked_forms_is_escaped_on_every_page(app, api, payload):
    app.config["RATELIMIT_ENABLED"] = False
    run = Run(app, api, payload)
    set_clock(app, datetime(2026, 8, 3, 2, 0))    # Monday 3 August 2026, 10:00 in Beijing
    enterprise_id, licence_id = make_payer(app)
    with app.app_context():
        licensing.add_dimension("ordinary", "外观", "条索紧结")
        licensing.add_dimension("ordinary", "农药残留", "符合 GB 2763 限量")
        db.session.commit()
    batch = issue(api, licence_id, 10, user="market")["id"]
    codes = [code_of(url) for url in batch_urls(api.client, api, batch, user="market")]
    open_quarter(app, api)                         # Friday 9 October: Q3 is opened

    cases = [royalty(run, enterprise_id), deposit_freeze(run, enterprise_id),
             suspect_label(run, codes[0]), *inspection(run, licence_id)]

    # The inspection's result is in the licence's trace on the verify page of every label
    # (the first one is also suspect by now).
    for code in codes[:2]:
        run.check(f"/V/{code}?geo=0", shown=True)
    run.check(f"/portal/licences/{licence_id}", "ent-r", shown=True)
    users = ("office", "leadership", "protection", "finance", "quality", "market", "ent-r")
    for case in cases:
        # Every one of these cases holds hostile text: its page shows it, escaped.
        for user in users:
            if run.client(user).get(f"/cases/{case}").status_code == 200:
                run.check(f"/cases/{case}", user, shown=True)
    for user in users:
        run.check("/inbox", user)
    run.check("/portal/", "ent-r")
    for url in ("/cases", "/finance/deposits"):
        run.check(url, "office")

    assert run.filled == CLOCKED
    assert run.shown >= 20, (run.shown, run.pages)
