"""Royalty collection: periods opened by the scheduler, declarations checked against labels,
royalties to the fen, and the paid, reminded, escalated and deducted paths on the clock.

The payer ``ent-r`` (a processor, deposit 1,000,000 fen) is licensed from 1 July 2026 and
gets 1,000 labels on 3 August; the clock then moves to Friday 9 October 2026, after the
third quarter (and the National Day holidays), and a timer run opens the quarter.
"""

import threading
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from test_admission import complete, the_task
from test_complaints import login, set_clock

from engine import clock, ledger, royalties, rules
from engine.errors import ValidationFailed
from engine.models import Instance, User
from engine.royalties import Royalty, compute_royalty_fen
from web import transaction
from web.demo_royalty import add_royalty_payer
from web.extensions import db

DEPOSIT = 1_000_000
Q3 = (date(2026, 7, 1), date(2026, 9, 30))


def make_payer(app, username="ent-r", name="盈江县测试茶叶加工厂", kind="processor",
               basis_points=None):
    with app.app_context():
        enterprise, licence = add_royalty_payer(username, name, kind, valid_from=Q3[0],
                                                deposit_fen=DEPOSIT, basis_points=basis_points)
        db.session.commit()
        return enterprise.id, licence.id


def issue(api, licence_id, count):
    return api.post(f"/licences/{licence_id}/label-batches", "market", {"count": count},
                    expect=201)


def open_quarter(app, api):
    """After the quarter: a timer run (the virtual clock moving) opens the royalty cases."""
    set_clock(app, datetime(2026, 10, 9, 2, 0))
    api.post("/clock/advance", "it", {"duration": "PT1M"})


def ledger_of(api, enterprise_id, user="finance", expect=200):
    return api.get(f"/enterprises/{enterprise_id}/royalties", user, expect=expect)


def the_royalty(api, enterprise_id):
    items = ledger_of(api, enterprise_id)["items"]
    assert len(items) == 1, items
    return items[0]


@pytest.fixture
def payer(app, api):
    """(enterprise id, licence id, case id) of ent-r with Q3 open and 1,000 labels."""
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    enterprise_id, licence_id = make_payer(app)
    issue(api, licence_id, 1000)
    open_quarter(app, api)
    royalty = the_royalty(api, enterprise_id)
    return enterprise_id, licence_id, royalty["instance_id"]


def declare(api, case, units, sales_fen, user="ent-r", expect=200):
    return complete(api, user, case, "declaration",
                    {"declared_units": units, "declared_sales_fen": sales_fen,
                     "declaration_note": "本季度品牌茶叶销售"}, expect=expect)


def accept(api, case):
    complete(api, "finance", case, "finance_check",
             {"declaration_accepted": True, "check_note": "与标签发放相符"})


def pay(api, case, spec="payment"):
    complete(api, "ent-r", case, spec,
             {"payment_reference": "ICBC-20261009-0001", "paid_on": "2026-10-09"})


def confirm(api, case, received=True):
    complete(api, "finance", case, "payment_check",
             {"payment_received": received, "payment_comment": ""})


def advance(api, duration):
    return api.post("/clock/advance", "it", {"duration": duration})["fired"]


# -- the arithmetic ----------------------------------------------------------------------------

@pytest.mark.parametrize("sales_fen, basis_points, royalty_fen", [
    (0, 25, 0),
    (199, 25, 0),                     # 0.4975 fen rounds down
    (200, 25, 1),                     # 0.5 fen rounds half up
    (599, 25, 1),                     # 1.4975
    (600, 25, 2),                     # 1.5
    (123_456_789, 25, 308_642),       # 308,641.9725
    (5_000_000_000, 25, 12_500_000),  # CNY 50 million at 0.25 % = CNY 125,000
    (5_000_000_000, 50, 25_000_000),  # the plan's CNY 250,000 needs 0.5 %
    (10**17 + 200, 25, 250_000_000_000_001),  # half a fen above 10**17: no float holds it
])
def test_royalty_is_rounded_half_up_to_the_fen(sales_fen, basis_points, royalty_fen):
    assert compute_royalty_fen(sales_fen, basis_points) == royalty_fen


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True, None])
def test_royalty_of_a_non_integer_amount_is_refused(bad):
    with pytest.raises(ValueError):
        compute_royalty_fen(bad, 25)


def test_periods_end_at_beijing_midnight():
    # 30 September, 23:30 in Beijing: the third quarter is still running.
    assert royalties.last_ended_period(datetime(2026, 9, 30, 15, 30), 3) == (
        date(2026, 4, 1), date(2026, 6, 30))
    # 1 October, 00:30 in Beijing (still 30 September in UTC): it has ended.
    assert royalties.last_ended_period(datetime(2026, 9, 30, 16, 30), 3) == Q3
    assert royalties.last_ended_period(datetime(2027, 1, 5), 3) == (
        date(2026, 10, 1), date(2026, 12, 31))
    assert royalties.last_ended_period(datetime(2026, 3, 2), 1) == (
        date(2026, 2, 1), date(2026, 2, 28))
    assert royalties.last_ended_period(datetime(2026, 3, 2), 12) == (
        date(2025, 1, 1), date(2025, 12, 31))
    assert royalties.period_label(*Q3) == "2026年第3季度"


# -- a quarter collected -----------------------------------------------------------------------

@pytest.mark.parametrize("sales_fen, royalty_fen", [
    (5_000_000_000, 12_500_000),
    (123_456_789, 308_642),
    (200, 1),
])
def test_a_quarter_is_declared_assessed_and_paid(app, api, payer, sales_fen, royalty_fen):
    enterprise_id, _licence_id, case = payer
    opened = the_royalty(api, enterprise_id)
    assert (opened["period_start"], opened["period_end"]) == ("2026-07-01", "2026-09-30")
    assert opened["status"] == "declaring" and opened["royalty_basis_points"] == 25

    declare(api, case, 800, sales_fen)
    checking = the_royalty(api, enterprise_id)
    assert checking["status"] == "checking"
    assert checking["labels_available"] == 1000 and checking["flag"] is None
    accept(api, case)

    due = the_royalty(api, enterprise_id)
    assert due["status"] == "due" and due["royalty_fen"] == royalty_fen
    # 15 working days from Friday 9 October 2026 (Saturday 10 October is a make-up
    # working day of the National Day holiday), at the end of the day in Beijing.
    assert due["due_on"] == "2026-10-29T15:59:59Z"
    pay(api, case)
    confirm(api, case)

    body = ledger_of(api, enterprise_id, user="ent-r")
    assert body["items"][0]["status"] == "paid"
    assert body["items"][0]["payment_reference"] == "ICBC-20261009-0001"
    assert (body["assessed_fen"], body["collected_fen"], body["outstanding_fen"]) == (
        royalty_fen, royalty_fen, 0)
    assert api.get(f"/instances/{case}", "finance")["status"] == "completed"
    year = [y for y in api.get("/royalties/yearly", "office")["items"] if y["year"] == 2026]
    assert year[0]["collected_fen"] == royalty_fen and year[0]["count"] == 1


def test_payment_not_received_goes_back_to_the_enterprise(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 10, 1_000_000)
    accept(api, case)
    pay(api, case)
    confirm(api, case, received=False)
    assert the_task(api, "ent-r", case, "payment")
    assert the_royalty(api, enterprise_id)["status"] == "due"


def test_finance_can_send_a_declaration_back(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 10, 1_000_000)
    complete(api, "finance", case, "finance_check",
             {"declaration_accepted": False, "check_note": "销售额与发票不符，请重报"})
    assert the_royalty(api, enterprise_id)["status"] == "declaring"
    declare(api, case, 12, 1_200_000)
    assert the_royalty(api, enterprise_id)["declared_sales_fen"] == 1_200_000


# -- overdue, reminded, escalated, deducted ----------------------------------------------------

def test_an_overdue_royalty_is_reminded_then_paid(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 500, 100_000_000)
    accept(api, case)

    assert advance(api, "P20D") == 0          # 29 October, 10:00: still in time
    assert the_royalty(api, enterprise_id)["status"] == "due"
    assert advance(api, "P2D") == 1           # 31 October: the deadline passed
    reminded = the_royalty(api, enterprise_id)
    assert reminded["status"] == "overdue" and reminded["overdue"] is True
    assert reminded["reminded_at"] is not None
    task = the_task(api, "ent-r", case, "payment_reminded")
    assert task["name"] == "催缴：缴纳逾期品牌权费"

    pay(api, case, spec="payment_reminded")
    confirm(api, case)
    paid = the_royalty(api, enterprise_id)
    assert paid["status"] == "paid" and paid["royalty_fen"] == 250_000


def test_still_unpaid_it_is_escalated_and_deducted_from_the_deposit(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 500, 100_000_000)      # CNY 1 million: royalty 250,000 fen
    accept(api, case)

    advance(api, "P22D")                      # reminded on 31 October
    assert advance(api, "P6D") == 0           # 6 November: within 5 working days
    assert the_royalty(api, enterprise_id)["status"] == "overdue"
    assert advance(api, "P2D") == 1           # 8 November: escalated
    escalated = the_royalty(api, enterprise_id)
    assert escalated["status"] == "escalated" and escalated["escalated_at"] is not None
    the_task(api, "leadership", case, "royalty_decision")

    complete(api, "leadership", case, "royalty_decision",
             {"royalty_decision": "deduct", "royalty_decision_note": "从保证金中扣缴"})
    deducted = the_royalty(api, enterprise_id)
    assert deducted["status"] == "deducted" and deducted["decision"] == "deduct"
    deposit = api.get(f"/enterprises/{enterprise_id}/deposit", "finance")
    assert deposit["balance_fen"] == DEPOSIT - 250_000
    assert (deposit["frozen_fen"], deposit["advanced_fen"]) == (0, 0)
    assert deposit["shortfall_fen"] == 250_000
    kinds = [(e["kind"], e["amount_fen"], e["instance_id"]) for e in deposit["entries"]
             if e["instance_id"] == case]
    assert kinds == [("frozen", 250_000, case), ("paid_out", 250_000, case),
                     ("deducted", 250_000, case)]
    assert ledger_of(api, enterprise_id)["collected_fen"] == 250_000
    with app.app_context():
        assert ledger.reconcile(enterprise_id).ok


def test_a_deduction_larger_than_the_deposit_is_refused(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 900, 5_000_000_000)    # royalty 12,500,000 fen > deposit
    accept(api, case)
    advance(api, "P22D")
    advance(api, "P8D")
    refused = complete(api, "leadership", case, "royalty_decision",
                       {"royalty_decision": "deduct", "royalty_decision_note": "扣缴"},
                       expect=422)
    assert "royalty_decision" in refused["error"]["fields"]
    assert api.get(f"/enterprises/{enterprise_id}/deposit", "finance")["balance_fen"] == DEPOSIT
    # Leadership gives a new deadline instead; the enterprise pays.
    complete(api, "leadership", case, "royalty_decision",
             {"royalty_decision": "extend", "royalty_decision_note": "限期缴纳"})
    assert the_royalty(api, enterprise_id)["status"] == "due"
    pay(api, case)
    confirm(api, case)
    assert the_royalty(api, enterprise_id)["status"] == "paid"


def test_leadership_can_start_an_expulsion_for_unpaid_dues(app, api, payer):
    enterprise_id, _licence_id, case = payer
    declare(api, case, 500, 100_000_000)
    accept(api, case)
    advance(api, "P22D")
    advance(api, "P8D")
    complete(api, "leadership", case, "royalty_decision",
             {"royalty_decision": "expel", "royalty_decision_note": "拒不缴纳权费"})
    assert the_royalty(api, enterprise_id)["decision"] == "expel"
    assert api.get(f"/instances/{case}", "finance")["status"] == "completed"
    with app.app_context():
        from engine.expulsion import Expulsion

        expulsion = db.session.scalars(select(Expulsion)).one()
        assert (expulsion.enterprise_id, expulsion.grounds) == (enterprise_id, "unpaid_dues")
        assert f"权费案件 {case}" in expulsion.evidence
    # The deposit is untouched until the expulsion case decides.
    assert api.get(f"/enterprises/{enterprise_id}/deposit", "finance")["balance_fen"] == DEPOSIT


def test_an_undeclared_period_is_escalated_to_leadership(app, api, payer):
    enterprise_id, _licence_id, case = payer
    assert advance(api, "P16D") == 1          # 25 October: 10 working days passed
    the_task(api, "leadership", case, "declaration_supervision")
    # The declaration stays open for the enterprise.
    declare(api, case, 5, 500_000)
    assert the_royalty(api, enterprise_id)["status"] == "checking"


# -- the declaration against the labels ----------------------------------------------------------

def test_a_declaration_larger_than_the_labels_allow_is_flagged(app, api):
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    enterprise_id, licence_id = make_payer(app)
    issue(api, licence_id, 1000)
    cancelled = issue(api, licence_id, 300)
    api.post(f"/label-batches/{cancelled['id']}/cancel", "market", {"reason": "印错"})
    set_clock(app, datetime(2026, 10, 9, 2, 0))
    issue(api, licence_id, 500)               # after the quarter: does not count for it
    advance(api, "PT1M")
    case = the_royalty(api, enterprise_id)["instance_id"]

    declare(api, case, 1001, 10_000_000)
    flagged = the_royalty(api, enterprise_id)
    assert flagged["labels_available"] == 1000
    assert flagged["flag"] == "oversized"
    assert flagged["flag_text"] == "申报数量超过已发放标签可覆盖的数量"
    task = the_task(api, "finance", case, "finance_check")
    page = login_and_get(app, f"/tasks/{task['id']}", "finance")
    assert "申报数量超过已发放标签可覆盖的数量" in page


def test_fewer_units_than_labels_scanned_in_the_period_is_flagged(app, client, api):
    from test_labels import batch_urls, code_of, verify

    set_clock(app, datetime(2026, 8, 3, 2, 0))
    enterprise_id, licence_id = make_payer(app)
    batch = issue(api, licence_id, 10)
    urls = batch_urls(client, api, batch["id"], user="market")
    for url in urls[:3]:
        assert verify(client, code_of(url))["status"] == "genuine"
    open_quarter(app, api)
    verify(client, code_of(urls[3]))          # scanned after the quarter: not counted
    case = the_royalty(api, enterprise_id)["instance_id"]

    declare(api, case, 2, 100_000)
    flagged = the_royalty(api, enterprise_id)
    assert (flagged["labels_available"], flagged["labels_scanned"]) == (10, 3)
    assert flagged["flag"] == "undersized"


def login_and_get(app, path, username):
    client = app.test_client()
    login(client, username)
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_units_declared_for_earlier_periods_leave_fewer_labels(app, api, payer):
    enterprise_id, licence_id, case = payer
    declare(api, case, 700, 1_000_000)
    accept(api, case)
    pay(api, case)
    confirm(api, case)

    set_clock(app, datetime(2027, 1, 8, 2, 0))
    advance(api, "PT1M")
    items = ledger_of(api, enterprise_id)["items"]
    assert [i["period_start"] for i in items] == ["2026-10-01", "2026-07-01"]
    declare(api, items[0]["instance_id"], 301, 1_000_000)
    assert ledger_of(api, enterprise_id)["items"][0]["labels_available"] == 300
    assert ledger_of(api, enterprise_id)["items"][0]["flag"] == "oversized"


# -- opening periods -----------------------------------------------------------------------------

def test_opening_a_period_is_idempotent(app, api):
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    enterprise_id, licence_id = make_payer(app)
    make_payer(app, "ent-coop", "盈江县测试合作社", kind="cooperative")
    set_clock(app, datetime(2026, 10, 9, 2, 0))
    with app.app_context():
        assert royalties.open_due_periods(transaction) == 1
        assert royalties.open_due_periods(transaction) == 0
    advance(api, "PT1M")
    advance(api, "PT1M")
    with app.app_context():
        rows = db.session.scalars(select(Royalty)).all()
        assert [(r.licence_id, r.period_start) for r in rows] == [(licence_id, Q3[0])]
        instance_id = rows[0].instance_id
        # The database itself refuses a second royalty for the same licence and period.
        db.session.add(Royalty(licence_id=licence_id, enterprise_id=enterprise_id,
                               instance_id=instance_id, period_start=Q3[0], period_end=Q3[1],
                               royalty_basis_points=25, created_at=clock.now()))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_two_schedulers_at_once_open_each_period_once(app):
    """Two workers run the job at the same instant: one case per licence, whatever wins."""
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    licences = [make_payer(app, f"ent-p{n}", f"盈江县并发测试厂{n}")[1] for n in range(4)]
    set_clock(app, datetime(2026, 10, 9, 2, 0))
    barrier = threading.Barrier(2)
    opened, failures = [], []

    def worker():
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                opened.append(royalties.open_due_periods(transaction))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not failures and sum(opened) == len(licences)
    with app.app_context():
        rows = db.session.execute(select(Royalty.licence_id, func.count(Royalty.id))
                                  .group_by(Royalty.licence_id)).all()
        assert sorted(rows) == [(licence_id, 1) for licence_id in sorted(licences)]
        cases = db.session.scalar(select(func.count(Instance.id)).where(
            Instance.process_key == "royalty"))
        assert cases == len(licences)


def test_the_period_length_is_a_rule_the_office_edits(app, api):
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    make_payer(app)
    with app.app_context():
        office = db.session.scalars(select(User).where(User.username == "office")).one()
        with pytest.raises(ValidationFailed) as refused:
            rules.set_rule("royalty.period_months", 5, office)
        assert refused.value.details["choices"] == [1, 2, 3, 4, 6, 12]
        rules.set_rule("royalty.period_months", 1, office, reason="试运营按月征收")
        db.session.commit()
    set_clock(app, datetime(2026, 9, 1, 2, 0))
    advance(api, "PT1M")
    with app.app_context():
        periods = db.session.execute(select(Royalty.period_start, Royalty.period_end)).all()
        assert periods == [(date(2026, 8, 1), date(2026, 8, 31))]


def test_no_case_can_be_started_by_hand(api):
    api.post("/processes/royalty/instances", "finance", {"data": {}}, expect=403)


def test_licences_that_were_not_active_in_the_period_owe_nothing(app, api):
    set_clock(app, datetime(2026, 10, 9, 2, 0))
    with app.app_context():
        add_royalty_payer("ent-new", "盈江县新设加工厂", valid_from=date(2026, 10, 9))
        db.session.commit()
    advance(api, "PT1M")
    with app.app_context():
        assert db.session.scalar(select(func.count(Royalty.id))) == 0


# -- who sees what -------------------------------------------------------------------------------

def test_an_enterprise_reads_only_its_own_royalties(app, api, payer):
    enterprise_id, _licence_id, _case = payer
    set_clock(app, datetime(2026, 8, 3, 2, 0))
    other_id, _ = make_payer(app, "ent-s", "盈江县另一加工厂")

    assert ledger_of(api, enterprise_id, user="ent-r")["enterprise_id"] == enterprise_id
    ledger_of(api, other_id, user="ent-r", expect=403)
    ledger_of(api, enterprise_id, user="ent-s", expect=403)
    ledger_of(api, enterprise_id, user="ent-b", expect=403)
    ledger_of(api, enterprise_id, user="protection", expect=403)
    api.get("/royalties/yearly", "ent-r", expect=403)
    ledger_of(api, 999_999, expect=404)

    client = app.test_client()
    login(client, "ent-s")
    assert client.get(f"/royalties/enterprises/{enterprise_id}").status_code == 403
    assert client.get("/royalties/").status_code == 403
    assert client.get(f"/royalties/enterprises/{other_id}").status_code == 200
    page = login_and_get(app, "/royalties/", "finance")
    assert "盈江县测试茶叶加工厂" in page and "2026" in page


def test_the_demo_payer_has_a_quarter_to_collect(app, api):
    """What ``make run`` seeds: ent-c licensed since the last quarter began, with labels."""
    from web.demo_royalty import seed_royalty_demo

    with app.app_context():
        seed_royalty_demo()
        seed_royalty_demo()
        db.session.commit()
        start, end = royalties.last_ended_period()
    advance(api, "PT1M")
    enterprise_id = api.get("/enterprises", "ent-c")["items"][0]["id"]
    royalty = the_royalty(api, enterprise_id)
    assert (royalty["period_start"], royalty["period_end"]) == (start.isoformat(),
                                                               end.isoformat())
    declare(api, royalty["instance_id"], 1500, 30_000_000, user="ent-c")
    checked = the_royalty(api, enterprise_id)
    assert checked["labels_available"] == 2000 and checked["flag"] is None


def test_beijing_days_start_eight_hours_before_utc_midnight():
    assert royalties.local_day(datetime(2026, 9, 30, 16, 0)) == date(2026, 10, 1)
    assert royalties.local_day(datetime(2026, 9, 30, 15, 59)) == date(2026, 9, 30)
    assert royalties.local_midnight(date(2026, 10, 1)) == datetime(2026, 9, 30, 16, 0)
