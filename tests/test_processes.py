"""Several processes on one database, as in production: gunicorn with four workers, each
running the timer scheduler, or the scheduler in processes of its own. Forty cases whose
supplement deadline has passed must each lapse exactly once, whichever process gets there
first, while the workers go on serving requests.

Run with the rest of the suite; ``make test-postgres`` runs it on PostgreSQL, where the
schedulers claim cases with ``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

import json
import threading
import urllib.error
import urllib.request

import pytest
from conftest import add_enterprise_logins
from serving import gunicorn, scheduler, wait_for
from sqlalchemy import func, select
from test_races import APPLICATION, SUPPLEMENT

from engine import audit, clock
from engine.models import Enterprise, HistoryEntry, Instance
from web.extensions import db

CASES = 40


@pytest.fixture
def waiting_cases(app, api):
    """CASES admission cases sent back for supplements, their deadline already passed on the
    virtual clock, and no timer fired yet: the first scheduler to look finds all of them."""
    add_enterprise_logins(app, "ent-p", CASES, "盈江县多进程茶厂{}")
    ids = []
    for n in range(CASES):
        instance_id = api.post("/processes/admission_review/instances", f"ent-p{n}",
                               {"data": dict(APPLICATION, enterprise_name=f"多进程茶厂{n}")},
                               expect=201)["id"]
        task = [t for t in api.get(f"/instances/{instance_id}", "market")["open_tasks"]
                if t["task"] == "completeness_check"][0]
        api.post(f"/tasks/{task['id']}/complete", "market", {"data": SUPPLEMENT})
        ids.append(instance_id)
    with app.app_context():
        clock.advance("P40D")          # not firing: that is the servers' job
        db.session.commit()
    return ids


def timer_entries(app, ids):
    with app.app_context():
        rows = db.session.execute(
            select(HistoryEntry.instance_id, func.count())
            .where(HistoryEntry.instance_id.in_(ids), HistoryEntry.kind == "timer")
            .group_by(HistoryEntry.instance_id)).all()
        db.session.remove()
        return dict(rows)


def statuses(app, ids):
    with app.app_context():
        rows = db.session.execute(select(Instance.id, Instance.status)
                                  .where(Instance.id.in_(ids))).all()
        db.session.remove()
        return dict(rows)


def serve_requests(url, token, stop, answers):
    """A client listing its inbox over and over while the timers fire."""
    request = urllib.request.Request(f"{url}/api/v1/tasks",
                                     headers={"Authorization": f"Bearer {token}"})
    while not stop.is_set():
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                json.load(response)
                answers.append(response.status)
        except urllib.error.HTTPError as exc:
            answers.append(exc.code)


def assert_each_lapsed_once(app, ids, logs):
    done = wait_for(lambda: set(statuses(app, ids).values()) == {"completed"}, timeout=120)
    assert done, (statuses(app, ids), logs()[-3000:])
    fired = timer_entries(app, ids)
    assert fired == {i: 1 for i in ids}, {i: n for i, n in fired.items() if n != 1}
    with app.app_context():
        lapsed = db.session.scalar(select(func.count()).where(
            Enterprise.name.like("%多进程茶厂%"), Enterprise.status == "lapsed"))
        check = audit.verify_chain(db.session)
        db.session.remove()
    assert lapsed == CASES
    assert check.ok, check.problem
    assert "Traceback" not in logs(), logs()[-3000:]


def test_four_workers_each_with_a_scheduler_fire_every_timer_once(app, api, waiting_cases,
                                                                   database_url, tmp_path):
    token = api.token("market")
    server = gunicorn(database_url, tmp_path / "gunicorn.log", workers=4, scheduler=True)
    stop, answers = threading.Event(), []
    client = threading.Thread(target=serve_requests, args=(server.url, token, stop, answers))
    client.start()
    try:
        assert_each_lapsed_once(app, waiting_cases, server.log)
    finally:
        stop.set()
        client.join(timeout=30)
        server.stop()
    assert answers and set(answers) == {200}, set(answers)


def test_schedulers_in_their_own_processes_fire_every_timer_once(app, api, waiting_cases,
                                                                  database_url, tmp_path):
    server = gunicorn(database_url, tmp_path / "gunicorn.log", workers=4, scheduler=False)
    schedulers = [scheduler(database_url, tmp_path / f"scheduler{n}.log") for n in range(2)]

    def logs():
        return server.log() + "".join(s.log() for s in schedulers)

    try:
        assert_each_lapsed_once(app, waiting_cases, logs)
    finally:
        for process in schedulers:
            process.stop()
        server.stop()
