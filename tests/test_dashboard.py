"""The leadership dashboard: its figures against counts taken straight from the database.

A scenario builds real cases through the API (an admission held up past its deadlines, a
licence with labels scanned in two townships, a complaint), moves the virtual clock so
that some tasks are overdue and escalated, and then every figure on the dashboard, in
its CSV and on the page is compared with what the test counts itself from the rows.
"""

import csv
import io
import statistics
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_admission import apply, complete
from test_complaints import COMPLAINT, file_online
from test_inbox import login
from test_labels import batch_urls, code_of, issue, verify
from test_licences import grant

from engine import clock, dashboard, ledger, rules
from engine.accounts import GROUPS
from engine.complaints import Complaint
from engine.deposits import DepositDispute
from engine.labels import Label, LabelScan
from engine.licensing import Licence
from engine.models import DepositEntry, Enterprise, HumanTask, Instance, User
from web.extensions import db

# Close to the schematic centres of 平原镇 (the county seat) and 那邦镇.
PINGYUAN = {"lat": "24.7101", "lng": "97.9402"}
NABANG = {"lat": "24.6877", "lng": "97.5712"}
# Kunming: far outside the county.
KUNMING = {"lat": "25.0406", "lng": "102.7123"}


@pytest.fixture
def scenario(app, api, client):
    app.config["PUBLIC_RATE_LIMIT"] = "100000 per minute"
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        rules.set_rule("label.suspect_scan_count", 2, office, "测试：第三次扫码即可疑")
        db.session.commit()

    # An admission whose parallel reviews go overdue: two 督办 tasks for leadership.
    held_up = apply(api)
    complete(api, "market", held_up, "completeness_check", {"completeness_decision": "complete"})

    # A licence with labels: scans in 平原镇 and 那邦镇, one far away, one without position.
    grant(api, quota=50)
    licence_id = api.get("/licences", "ent-b")["items"][0]["id"]
    batch = issue(api, licence_id, 5)
    codes = [code_of(url) for url in batch_urls(client, api, batch["id"])]
    verify(client, codes[0], **PINGYUAN)
    verify(client, codes[0], **PINGYUAN)
    assert verify(client, codes[0], **PINGYUAN)["status"] == "suspect"
    verify(client, codes[1], **NABANG)
    verify(client, codes[2], **KUNMING)
    verify(client, codes[3])
    assert verify(client, "NOT-A-CODE", **NABANG)["status"] == "counterfeit"

    reference = file_online(client)["reference"]
    other = dict(COMPLAINT, product="tea", description="茶叶包装破损，受潮结块。")
    file_online(client, other)

    # Past the reviews' deadlines and the complaints' 7 working days for acceptance.
    api.post("/clock/advance", "it", {"duration": "P16D"})
    return {"held_up": held_up, "licence_id": licence_id, "complaint": reference}


def db_rows(app, model, *conditions):
    with app.app_context():
        rows = db.session.scalars(select(model).where(*conditions)).all()
        db.session.expunge_all()
        return rows


def figures(app, key):
    with app.app_context():
        clock.load_offset()
        return dashboard.chart(key).rows


def process_names(app):
    with app.app_context():
        return dashboard.process_names()


# -- figures against the database -----------------------------------------------------------------

def test_open_cases_match_the_open_task_rows(app, scenario):
    tasks = db_rows(app, HumanTask, HumanTask.state == "open")
    expected_cases, expected_tasks = defaultdict(set), Counter()
    for task in tasks:
        expected_cases[(task.process_key, task.group_id)].add(task.instance_id)
        expected_tasks[(task.process_key, task.group_id)] += 1

    rows = figures(app, "open_cases")
    assert {(r["process"], r["group"]): (r["cases"], r["tasks"]) for r in rows} == {
        key: (len(ids), expected_tasks[key]) for key, ids in expected_cases.items()}
    # The held-up admission waits on quality, finance and leadership at once.
    lanes = {r["group"] for r in rows if r["process"] == "admission_review"}
    assert {"quality", "finance", "leadership"} <= lanes


def test_overdue_follows_the_virtual_clock(app, api, scenario):
    with app.app_context():
        clock.load_offset()
        now = clock.now()
    tasks = db_rows(app, HumanTask, HumanTask.state == "open")
    late = [t for t in tasks if t.due_at is not None and t.due_at < now]
    assert late, "the scenario should leave tasks overdue"

    rows = figures(app, "overdue")
    assert sum(r["tasks"] for r in rows) == len(late)
    assert {(r["process"], r["group"]): r["cases"] for r in rows} == {
        key: len({t.instance_id for t in late if (t.process_key, t.group_id) == key})
        for key in {(t.process_key, t.group_id) for t in late}}
    assert ("admission_review", "quality") in {(r["process"], r["group"]) for r in rows}

    # Ten more days: more is overdue, never less.
    api.post("/clock/advance", "it", {"duration": "P10D"})
    assert sum(r["tasks"] for r in figures(app, "overdue")) >= len(late)


def test_escalated_cases_are_the_open_supervision_tasks_and_flagged_records(app, scenario):
    running = {i.id: i.process_key for i in db_rows(app, Instance, Instance.status == "running")}
    escalated = {t.instance_id for t in db_rows(app, HumanTask, HumanTask.state == "open")
                 if t.name.startswith("督办")}
    escalated |= {c.instance_id for c in db_rows(app, Complaint) if c.escalated_at
                  and c.instance_id in running}
    escalated |= {d.instance_id for d in db_rows(app, DepositDispute) if d.escalated_at
                  and d.instance_id in running}
    assert scenario["held_up"] in escalated
    # Both complaints were not accepted within 7 working days.
    assert {c.instance_id for c in db_rows(app, Complaint)} <= escalated

    rows = figures(app, "escalated")
    assert {r["process"]: r["cases"] for r in rows} == dict(
        Counter(running[i] for i in escalated))
    with app.app_context():
        clock.load_offset()
        assert dashboard.summary()["escalated_cases"] == len(escalated)


def test_median_time_per_step_from_created_to_completed(app, scenario):
    done = db_rows(app, HumanTask, HumanTask.state == "completed")
    seconds = defaultdict(list)
    for task in done:
        seconds[(task.process_key, task.name)].append(
            (task.completed_at - task.created_at).total_seconds())

    rows = figures(app, "step_durations")
    assert {(r["process"], r["step"]): (r["completed"], r["median_hours"]) for r in rows} == {
        key: (len(v), round(statistics.median(v) / 3600, 1)) for key, v in seconds.items()}
    assert ("licence_grant", "签发品牌授权") in {(r["process"], r["step"]) for r in rows}


def test_admissions_and_licences_by_beijing_month(app, scenario):
    def month(value):
        return (value + timedelta(hours=8)).strftime("%Y-%m")

    admitted = Counter(month(e.admitted_at) for e in db_rows(app, Enterprise) if e.admitted_at)
    granted = Counter(month(lic.signed_at) for lic in db_rows(app, Licence) if lic.signed_at)
    rows = figures(app, "admissions_licences")
    assert {r["month"]: r["admitted"] for r in rows if r["admitted"]} == dict(admitted)
    assert {r["month"]: r["licences_granted"] for r in rows if r["licences_granted"]} == \
        dict(granted)
    assert sum(granted.values()) == 1


def test_deposits_are_the_ledger_sums(app, scenario):
    entries = db_rows(app, DepositEntry)
    balance, frozen, advanced = Counter(), Counter(), Counter()
    for entry in entries:
        b, f, a = ledger.EFFECTS[entry.kind]
        balance[entry.enterprise_id] += b * entry.amount_fen
        frozen[entry.enterprise_id] += f * entry.amount_fen
        advanced[entry.enterprise_id] += a * entry.amount_fen

    rows = figures(app, "deposits")
    assert {r["enterprise_id"]: (r["held_fen"], r["frozen_fen"], r["available_fen"])
            for r in rows} == {
        eid: (balance[eid] - advanced[eid], frozen[eid], balance[eid] - frozen[eid])
        for eid in balance}
    # ent-b's demo opening balance: CNY 10,000.
    assert 1_000_000 in {r["held_fen"] for r in rows}


def test_scans_per_day_and_on_the_township_map(app, scenario):
    scans = db_rows(app, LabelScan)
    by_day = Counter(((s.scanned_at + timedelta(hours=8)).date().isoformat(), s.status)
                     for s in scans)
    rows = figures(app, "scans")
    assert len(rows) == dashboard.SCAN_DAYS + 1
    assert {(r["day"], status): r[status] for r in rows for status in dashboard.SCAN_STATUSES
            if r[status]} == dict(by_day)

    places = {r["township"]: r for r in figures(app, "scan_map")}
    assert places["pingyuan"]["scans"] == 3
    assert places["pingyuan"]["suspect_scans"] == 1
    assert places["pingyuan"]["suspect_labels"] == 1
    assert places["nabang"]["scans"] == 2
    assert places["nabang"]["counterfeit_scans"] == 1
    assert places[dashboard.OUTSIDE]["scans"] == 1
    assert places[dashboard.UNKNOWN]["scans"] == 1
    assert sum(p["scans"] for p in places.values()) == len(scans)
    suspect = db_rows(app, Label, Label.suspect_at.is_not(None))
    assert sum(p["suspect_labels"] for p in places.values()) == len(suspect) == 1


def test_complaints_by_product(app, scenario):
    complaints = db_rows(app, Complaint)
    rows = figures(app, "complaints_by_product")
    assert {r["product"]: r["complaints"] for r in rows} == dict(
        Counter(c.product for c in complaints))
    assert {r["product"]: r["open"] for r in rows} == {"black_cardamom": 1, "tea": 1}
    assert {r["product"]: r["escalated"] for r in rows} == {"black_cardamom": 1, "tea": 1}


def test_royalties_chart_reads_the_royalty_table(app, scenario):
    rows = figures(app, "royalties")
    try:
        from engine.royalties import COLLECTED, OUTSTANDING, Royalty
    except ImportError:
        assert rows == []
        return
    assessed = [r for r in db_rows(app, Royalty) if r.royalty_fen is not None]
    assert sum(r["collected_fen"] for r in rows) == sum(
        r.royalty_fen for r in assessed if r.status in COLLECTED)
    assert sum(r["due_fen"] for r in rows) == sum(
        r.royalty_fen for r in assessed if r.status in OUTSTANDING)


# -- the page, the CSV downloads, access --------------------------------------------------------

def csv_rows(client, key):
    response = client.get(f"/dashboard/{key}.csv")
    assert response.status_code == 200, response.text[:300]
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_downloads_match_the_figures(app, client, scenario):
    login(client, "leadership")
    names = process_names(app)

    header, *rows = csv_rows(client, "open_cases")
    assert header == ["流程", "部门", "案件数", "待办任务数"]
    groups = {gid: zh for gid, zh, _en in GROUPS}
    assert rows == [[names[r["process"]], groups[r["group"]], str(r["cases"]), str(r["tasks"])]
                    for r in figures(app, "open_cases")]

    header, *rows = csv_rows(client, "deposits")
    assert header[1] == "实存保证金（元）"
    expected = figures(app, "deposits")
    assert [int(row[1].replace(".", "")) for row in rows] == [r["held_fen"] for r in expected]
    assert [row[0] for row in rows] == [r["enterprise"] for r in expected]

    header, *rows = csv_rows(client, "scan_map")
    by_name = {row[0]: row for row in rows}
    assert by_name["平原镇"][3] == "3" and by_name["平原镇"][6] == "1"
    assert by_name["县外"][3] == "1" and by_name["位置不明"][3] == "1"

    header, *rows = csv_rows(client, "complaints_by_product")
    assert {row[0]: int(row[1]) for row in rows} == {"草果": 1, "茶叶": 1}

    for key in dashboard.CHARTS:
        header, *rows = csv_rows(client, key)
        assert len(rows) == len(figures(app, key)), key


def test_page_shows_every_chart_with_its_figures(app, client, scenario):
    login(client, "office")
    page = client.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    for key in dashboard.CHARTS:
        assert f'id="card-{key}"' in html
    assert "vendor/echarts/echarts.common.min.js" in html
    with app.app_context():
        clock.load_offset()
        summary = dashboard.summary()
    assert f'id="kpi-overdue_tasks">{summary["overdue_tasks"]}<' in html
    assert f'id="kpi-escalated_cases">{summary["escalated_cases"]}<' in html
    assert "¥10,000.00" in html
    assert "示意图" in html
    assert 'href="/dashboard"' in html


def test_english_page_names_departments_products_and_townships_in_english(client, scenario):
    login(client, "leadership")
    client.get("/lang/en")
    html = client.get("/dashboard").text
    assert "Quality inspection" in html and "质检部门" not in html
    assert "Black cardamom" in html
    assert "Pingyuan" in html and "平原镇" not in html


@pytest.mark.parametrize("username", ["market", "quality", "finance", "protection", "it",
                                      "ent-a"])
def test_other_departments_are_refused(client, username):
    login(client, username)
    refused = client.get("/dashboard")
    assert refused.status_code == 403
    assert "领导小组" in refused.text
    assert 'href="/dashboard"' not in refused.text
    assert client.get("/dashboard/open_cases.csv").status_code == 403


def test_anonymous_is_sent_to_login(client):
    for path in ("/dashboard", "/dashboard/deposits.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_unknown_chart_is_a_404(client):
    login(client, "leadership")
    assert client.get("/dashboard/nothing.csv").status_code == 404
