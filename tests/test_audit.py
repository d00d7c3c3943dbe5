"""The audit chain: every committed change is a record chained by digest to the one
before it, and ``flask verify-audit`` names the first record that was tampered with."""

import threading

from conftest import POSTGRES
from sqlalchemy import select, text
from test_admission import apply, complete, the_task
from test_complaints import COMPLAINT

from engine import audit
from engine.audit import AuditRecord
from web.extensions import db


def records(app):
    with app.app_context():
        rows = db.session.scalars(select(AuditRecord).order_by(AuditRecord.sequence)).all()
        db.session.expunge_all()
        return rows


def verify(app):
    result = app.test_cli_runner().invoke(args=["verify-audit"])
    return result.exit_code, result.output


def test_a_completed_task_is_one_record_naming_who_what_and_the_rows(app, api):
    instance_id = apply(api)
    before = records(app)[-1].sequence

    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "complete"})

    new = [r for r in records(app) if r.sequence > before]
    assert len(new) == 1
    record = new[0]
    assert record.actor == "market"
    assert record.action == "POST /api/v1/tasks/<int:task_id>/complete"
    assert instance_id in record.changes["instances"]["update"]["ids"]
    assert record.changes["history"]["insert"]["count"] >= 1
    assert record.changes["human_tasks"]["update"]["count"] >= 1
    assert record.previous_digest == records(app)[-2].digest


def test_the_start_of_a_case_is_recorded_with_the_enterprise_user(app, api):
    instance_id = apply(api)

    record = records(app)[-1]
    assert record.actor == "ent-a"
    assert record.action == "POST /api/v1/processes/<key>/instances"
    assert instance_id in record.changes["instances"]["insert"]["ids"]


def test_a_refused_step_leaves_no_record(app, api):
    instance_id = apply(api)
    count = len(records(app))

    # Another department's task: 403; invalid data: 422; neither changes anything.
    task = the_task(api, "market", instance_id, "completeness_check")
    api.post(f"/tasks/{task['id']}/complete", "quality", {"data": {}}, expect=403)
    api.post(f"/tasks/{task['id']}/complete", "market",
             {"data": {"completeness_decision": "maybe"}}, expect=422)

    assert len(records(app)) == count


def test_a_timer_firing_is_recorded_as_the_timer_within_the_clock_request(app, api):
    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "supplement", "supplement_request": "请补充证书"})
    before = records(app)[-1].sequence

    api.post("/clock/advance", "it", {"duration": "P30D"})

    new = [r for r in records(app) if r.sequence > before]
    timer_records = [r for r in new if instance_id in r.changes.get("instances", {})
                     .get("update", {}).get("ids", [])]
    assert timer_records, [(r.actor, r.action) for r in new]
    # The clock was moved by "it" through the API: the request names the actor.
    assert {r.actor for r in new} == {"it"}
    assert api.get(f"/instances/{instance_id}", "market")["status"] == "completed"


def test_the_scheduler_outside_a_request_is_named_as_the_timer(app, api):
    from web import transaction

    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "supplement", "supplement_request": "请补充证书"})
    with app.app_context():
        from engine import clock
        from engine.timers import fire_due_timers

        clock.advance("P30D")
        db.session.commit()
        before = records(app)[-1].sequence
        assert fire_due_timers(transaction) >= 1

    new = [r for r in records(app) if r.sequence > before]
    assert [r.actor for r in new] == ["timer"] * len(new) and new
    assert any(r.action == f"fire timers of case {instance_id}" for r in new)


def claim_and_release(api, instance_id):
    task = the_task(api, "market", instance_id, "completeness_check")
    api.post(f"/tasks/{task['id']}/claim", "market")
    api.post(f"/tasks/{task['id']}/unclaim", "market")


def test_the_chain_verifies_and_names_the_first_edited_record(app, api):
    instance_id = apply(api)
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "complete"})
    code, output = verify(app)
    assert code == 0, output
    assert "audit chain intact" in output
    chain = records(app)
    assert [r.sequence for r in chain] == list(range(1, len(chain) + 1))

    victim = chain[len(chain) // 2]
    with app.app_context():
        db.session.execute(text("UPDATE audit_records SET actor = 'somebody-else' "
                                "WHERE id = :id"), {"id": victim.id})
        db.session.commit()

    code, output = verify(app)
    assert code == 1
    assert f"broken at sequence {victim.sequence} (record id {victim.id})" in output
    assert "edited" in output


def test_a_removed_record_is_named_by_the_one_after_it(app, api):
    claim_and_release(api, apply(api))
    chain = records(app)
    victim = chain[-2]
    with app.app_context():
        db.session.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": victim.id})
        db.session.commit()

    code, output = verify(app)
    assert code == 1
    assert f"broken at sequence {victim.sequence + 1}" in output
    assert "missing" in output


def test_a_rewritten_record_with_a_fresh_digest_breaks_the_next_link(app, api):
    """Someone who edits a record and recomputes its digest still breaks the record after."""
    claim_and_release(api, apply(api))
    chain = records(app)
    victim = chain[-2]
    forged = AuditRecord(sequence=victim.sequence, at=victim.at, actor=victim.actor,
                         action=victim.action, previous_digest=victim.previous_digest,
                         changes={"nothing": {"insert": {"count": 0, "ids": []}}})
    forged.digest = audit.digest_of(forged)
    with app.app_context():
        # Straight to the table, as a tamperer would (no new audit record).
        db.session.execute(text("UPDATE audit_records SET changes = :c, digest = :d "
                                "WHERE id = :id"),
                           {"c": '{"nothing": {"insert": {"count": 0, "ids": []}}}',
                            "d": forged.digest, "id": victim.id})
        db.session.commit()

    code, output = verify(app)
    assert code == 1
    assert f"broken at sequence {victim.sequence + 1}" in output
    assert "does not follow" in output


def test_concurrent_steps_keep_one_unbroken_chain(app):
    """Eight consumers filing complaints at once: every record chained, none forked."""
    app.config["RATELIMIT_ENABLED"] = False
    statuses = []
    barrier = threading.Barrier(8)

    def file(n):
        client = app.test_client()
        barrier.wait()
        for k in range(3):
            response = client.post("/api/v1/complaints", json=dict(
                COMPLAINT, complainant_name=f"消费者{n}-{k}"))
            statuses.append(response.status_code)

    threads = [threading.Thread(target=file, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(statuses) <= {201, 409, 503}, statuses
    assert statuses.count(201) >= 1 and (POSTGRES is False or statuses.count(201) == 24)
    code, output = verify(app)
    assert code == 0, output
    chain = records(app)
    follows = [r.previous_digest for r in chain]
    assert len(set(follows)) == len(follows)        # no two records follow the same one
    with app.app_context():
        filed = db.session.scalar(text(
            "SELECT count(*) FROM instances WHERE process_key = 'complaint'"))
    recorded = sum(r.changes.get("instances", {}).get("insert", {}).get("count", 0)
                   for r in chain if r.action == "POST /api/v1/complaints")
    assert recorded == filed == statuses.count(201)
