"""The deposit ledger: sums of immutable entries, its rules under races, reconciliation."""

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from engine import clock, deploy, ledger
from engine.errors import Conflict
from engine.models import DepositEntry, Enterprise, Instance, User
from web.extensions import db

DEPOSIT = 1_000_000


def new_enterprise(name="盈江县测试草果合作社", required=DEPOSIT):
    enterprise = Enterprise(name=name, kind="cooperative", status="admitted",
                            deposit_required_fen=required, created_at=clock.now())
    db.session.add(enterprise)
    db.session.flush()
    return enterprise


def new_cases(count):
    """Bare case rows for entries to name (the ledger does not look inside them)."""
    version = deploy.get_version("deposit_freeze")
    now = clock.now()
    cases = [Instance(version_id=version.id, process_key="deposit_freeze", status="completed",
                      title="测试", started_at=now, updated_at=now, state={})
             for _ in range(count)]
    db.session.add_all(cases)
    db.session.flush()
    return [case.id for case in cases]


def user_id(username):
    return db.session.scalar(select(User.id).where(User.username == username))


@pytest.fixture
def funded(app):
    """An enterprise with its deposit paid in, eight cases and the finance user's id."""
    with app.app_context():
        enterprise = new_enterprise()
        finance = user_id("finance")
        cases = new_cases(8)
        ledger.pay_in(enterprise.id, DEPOSIT, approved_by=finance, note="期初")
        db.session.commit()
        return enterprise.id, cases, finance


def test_each_kind_moves_the_sums_it_names(app, funded):
    enterprise_id, (case, *_rest), finance = funded
    with app.app_context():
        approved = {"instance_id": case, "approved_by": finance}
        steps = [
            (ledger.pay_out, 300_000, (1_000_000, 0, 1_000_000, 300_000)),
            (ledger.freeze, 300_000, (1_000_000, 300_000, 700_000, 300_000)),
            (ledger.recover, 100_000, (1_000_000, 300_000, 700_000, 200_000)),
            (ledger.deduct, 200_000, (800_000, 100_000, 700_000, 0)),
            (ledger.unfreeze, 100_000, (800_000, 0, 800_000, 0)),
            (ledger.top_up, 200_000, (1_000_000, 0, 1_000_000, 0)),
            (ledger.refund, 1_000_000, (0, 0, 0, 0)),
        ]
        for post, amount, expected in steps:
            post(enterprise_id, amount, **approved)
            position = ledger.position(enterprise_id)
            assert (position.balance_fen, position.frozen_fen, position.available_fen,
                    position.advanced_fen) == expected, post.__name__
        db.session.commit()

        kinds = [e.kind for e in ledger.entries(enterprise_id)]
        assert kinds == ["paid_in", "paid_out", "frozen", "recovered", "deducted", "unfrozen",
                         "topped_up", "refunded"]
        assert [e.sequence for e in ledger.entries(enterprise_id)] == list(range(1, 9))
        assert ledger.reconcile(enterprise_id).ok


@pytest.mark.parametrize("post, amount, message", [
    (ledger.freeze, DEPOSIT + 1, "保证金可用余额不足"),
    (ledger.refund, DEPOSIT + 1, "保证金可用余额不足"),
    (ledger.recover, 1, "追回金额超过尚未追回的垫付款"),
    (ledger.pay_out, DEPOSIT + 1, "垫付款超过保证金余额"),
    (ledger.unfreeze, 1, "金额超过本案件冻结的保证金"),
])
def test_an_entry_that_breaks_a_rule_is_refused(app, funded, post, amount, message):
    enterprise_id, (case, *_rest), finance = funded
    with app.app_context():
        with pytest.raises(Conflict) as refused:
            post(enterprise_id, amount, instance_id=case, approved_by=finance)
        assert refused.value.message == message
        assert refused.value.details["available_fen"] == DEPOSIT
        db.session.rollback()
        assert len(ledger.entries(enterprise_id)) == 1


def test_a_case_cannot_release_another_cases_freeze(app, funded):
    enterprise_id, (first, second, *_rest), finance = funded
    with app.app_context():
        ledger.freeze(enterprise_id, 400_000, instance_id=first, approved_by=finance)
        with pytest.raises(Conflict):
            ledger.unfreeze(enterprise_id, 400_000, instance_id=second, approved_by=finance)
        ledger.unfreeze(enterprise_id, 400_000, instance_id=first, approved_by=finance)
        assert ledger.position(enterprise_id).frozen_fen == 0


def test_entries_are_immutable(app, funded):
    enterprise_id, _cases, _finance = funded
    with app.app_context():
        entry = ledger.entries(enterprise_id)[0]
        entry.amount_fen = 1
        with pytest.raises(RuntimeError, match="immutable"):
            db.session.flush()
        db.session.rollback()
        db.session.delete(ledger.entries(enterprise_id)[0])
        with pytest.raises(RuntimeError, match="immutable"):
            db.session.flush()


def test_reconcile_finds_an_entry_edited_behind_the_ledgers_back(app, funded):
    enterprise_id, (case, *_rest), finance = funded
    with app.app_context():
        ledger.freeze(enterprise_id, 250_000, instance_id=case, approved_by=finance)
        db.session.commit()
        assert ledger.reconcile().ok

        db.session.execute(text("UPDATE deposit_entries SET amount_fen = 900000 "
                                "WHERE kind = 'frozen'"))
        db.session.commit()
        problems = ledger.reconcile(enterprise_id).problems
        assert (enterprise_id, 2, "digest", "content or order changed after writing") in problems


def test_reconcile_ledger_command(app, funded):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reconcile-ledger"])
    assert result.exit_code == 0, result.output
    assert "balance 1000000 fen" in result.output
    assert "every deposit ledger reconciles" in result.output

    with app.app_context():
        db.session.execute(text("UPDATE deposit_entries SET note = 'x'"))
        db.session.commit()
    result = runner.invoke(args=["reconcile-ledger"])
    assert result.exit_code == 1
    assert "digest" in result.output


def test_two_writers_with_the_same_sequence_collide(app, funded):
    """The unique (enterprise, sequence) pair backs the lock up."""
    enterprise_id, _cases, finance = funded
    with app.app_context():
        first = ledger.entries(enterprise_id)[0]
        db.session.add(DepositEntry(
            enterprise_id=enterprise_id, sequence=first.sequence, kind="paid_in", amount_fen=1,
            approved_by=finance, created_at=clock.now(), digest="0" * 64))
        with pytest.raises(IntegrityError):
            db.session.flush()


def test_concurrent_deductions_never_drive_the_deposit_below_zero(app, funded):
    """Eight disputes of 300,000 fen each are deducted at once from a 1,000,000 deposit."""
    enterprise_id, cases, finance = funded
    amount = 300_000
    barrier = threading.Barrier(len(cases))
    results = [None] * len(cases)

    def dispute(i):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                case = {"instance_id": cases[i], "approved_by": finance}
                ledger.freeze(enterprise_id, amount, **case)
                ledger.pay_out(enterprise_id, amount, **case)
                ledger.deduct(enterprise_id, amount, **case)
                db.session.commit()
                results[i] = "deducted"
            except Conflict:
                db.session.rollback()
                results[i] = "refused"
            except OperationalError:
                # SQLite may refuse a writer that waited too long: a lost race, not a loss.
                db.session.rollback()
                results[i] = "busy"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=dispute, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    deducted = results.count("deducted")
    assert deducted == DEPOSIT // amount, results
    with app.app_context():
        position = ledger.position(enterprise_id)
        assert position.available_fen == DEPOSIT - deducted * amount == 100_000
        assert position.frozen_fen == 0 and position.advanced_fen == 0
        assert ledger.reconcile(enterprise_id).ok


OPERATIONS = st.lists(st.tuples(
    st.sampled_from(sorted(ledger.EFFECTS)),
    st.integers(min_value=1, max_value=600_000),
    st.integers(min_value=0, max_value=2)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_of_operations_reconciles(app, operations):
    """Whatever is attempted, accepted entries obey the rules and the sums replay exactly."""
    with app.app_context():
        enterprise = new_enterprise(name="随机企业")
        cases = new_cases(3)
        approver = user_id("finance")
        model = ledger.Position()
        for kind, amount, case in operations:
            try:
                ledger.post(enterprise.id, kind, amount, instance_id=cases[case],
                            approved_by=approver)
            except Conflict:
                continue
            model = model.after(kind, amount)
            assert model.problem() is None
            assert ledger.position(enterprise.id) == model
        db.session.commit()

        result = ledger.reconcile(enterprise.id)
        assert result.ok, result.problems
        assert result.positions.get(enterprise.id, ledger.Position()) == model
