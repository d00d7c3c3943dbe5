"""Timers: the scheduler wakes when the earliest timer is due; the virtual clock; production."""

import time
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select
from test_admission import APPLICATION, complete

from engine import clock, runtime
from engine.models import Enterprise, Timer
from engine.timers import TimerScheduler
from web import create_app, transaction
from web.cli import deploy_bpmn_dir
from web.extensions import db


def start_supplement_wait(api):
    instance_id = api.post("/processes/admission_review/instances", "ent-a",
                           {"data": APPLICATION}, expect=201)["id"]
    complete(api, "market", instance_id, "completeness_check",
             {"completeness_decision": "supplement", "supplement_request": "请补充证书"})
    return instance_id


def enterprise_status(app, name="ent-a"):
    with app.app_context():
        db.session.expire_all()
        enterprise = db.session.scalars(select(Enterprise).order_by(Enterprise.id)).first()
        return enterprise.status


def test_scheduler_fires_a_timer_when_it_is_due_without_polling(app, api):
    start_supplement_wait(api)
    with app.app_context():
        due = db.session.scalar(select(Timer.due_at))
        # Move the virtual clock to two seconds before the supplement deadline.
        gap = due - clock.now() - timedelta(seconds=2)
        clock.advance(f"PT{int(gap.total_seconds())}S")
        db.session.commit()

    @contextmanager
    def in_app():
        with app.app_context():
            clock.load_offset()
            with transaction() as session:
                yield session

    scheduler = TimerScheduler(in_app)
    scheduler.start()
    try:
        deadline = time.monotonic() + 15
        while enterprise_status(app) != "lapsed" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown()

    assert enterprise_status(app) == "lapsed"
    with app.app_context():
        assert db.session.scalar(select(Timer.id)) is None


def test_timers_survive_a_restart(app, api, database_url):
    instance_id = start_supplement_wait(api)

    restarted = create_app({"MODE": "test", "DATABASE_URL": database_url, "SCHEDULER": False,
                            "SECRET_KEY": "test-secret"})
    result = restarted.test_cli_runner().invoke(args=["clock-advance", "P20D"])
    assert result.exit_code == 0, result.output
    assert "fired 1 timer" in result.output
    with restarted.app_context():
        assert runtime.get_instance(instance_id).status == "completed"
        db.session.remove()
        db.engine.dispose()
    assert enterprise_status(app) == "lapsed"


def test_spiff_timers_read_the_engine_clock(app):
    import SpiffWorkflow.bpmn.specs.event_definitions.timer as spiff_timer

    with app.app_context():
        clock.advance("P400D")
        db.session.commit()
        spiff_now = spiff_timer.datetime.now(spiff_timer.timezone.utc)
        assert abs((spiff_now.replace(tzinfo=None) - clock.now()).total_seconds()) < 1
        assert clock.offset() >= timedelta(days=400)


def test_clock_advance_needs_an_administrator(api):
    body = api.post("/clock/advance", "market", {"duration": "P1D"}, expect=403)
    assert body["error"]["code"] == "forbidden"


def test_clock_advance_refuses_a_bad_duration(api):
    body = api.post("/clock/advance", "it", {"duration": "three days"}, expect=422)
    assert "duration" in body["error"]["fields"]


def test_no_virtual_clock_in_production(database_url):
    app = create_app({"MODE": "production", "DATABASE_URL": database_url, "SCHEDULER": False,
                      "SECRET_KEY": "production-secret"})
    with app.app_context():
        db.create_all()
        deploy_bpmn_dir(app)
    client = app.test_client()
    response = client.post("/api/v1/clock/advance", json={"duration": "P1D"})
    assert response.status_code == 404
    assert "/clock/advance" not in client.get("/api/v1/openapi.json").get_json()["paths"]
    result = app.test_cli_runner().invoke(args=["clock-advance", "P1D"])
    assert result.exit_code != 0
    assert "does not exist in production" in result.output
    with app.app_context():
        db.engine.dispose()
