"""A power cut in the middle of work: the server (master and workers) is killed with
SIGKILL while clients complete tasks and freeze deposits; time passes while it is down;
it restarts. Nothing may be half applied, the ledger must reconcile, the audit chain must
hold, and the timers that fell due during the outage must fire once each after restart.
"""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import add_enterprise_logins
from serving import gunicorn, wait_for
from sqlalchemy import func, select
from test_races import APPLICATION, SUPPLEMENT

from engine import audit, clock, ledger, runtime
from engine.models import HistoryEntry, HumanTask, Instance, User
from web.extensions import db

CASES = 30
FREEZE_FEN = 1_000


@pytest.fixture
def admission_cases(app, api):
    """CASES admission cases waiting at the market's completeness check."""
    add_enterprise_logins(app, "ent-k", CASES, "盈江县断电茶厂{}")
    cases = {}
    for n in range(CASES):
        instance_id = api.post("/processes/admission_review/instances", f"ent-k{n}",
                               {"data": dict(APPLICATION, enterprise_name=f"断电茶厂{n}")},
                               expect=201)["id"]
        task = [t for t in api.get(f"/instances/{instance_id}", "market")["open_tasks"]
                if t["task"] == "completeness_check"][0]
        cases[instance_id] = task["id"]
    return cases


def post(url, token, path, body):
    request = urllib.request.Request(
        f"{url}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return "no answer", None


def test_a_killed_server_leaves_nothing_half_done(app, api, admission_cases, database_url,
                                                 tmp_path):
    market, quality = api.token("market"), api.token("quality")
    with app.app_context():
        ent_b = db.session.scalar(select(User.enterprise_id).where(User.username == "ent-b"))
        db.session.remove()

    server = gunicorn(database_url, tmp_path / "before.log", workers=2, scheduler=True)
    answers = {"complete": [], "freeze": []}
    stop = threading.Event()

    def completer(task_ids):
        for task_id in task_ids:
            if stop.is_set():
                return
            status, _ = post(server.url, market, f"/tasks/{task_id}/complete",
                             {"data": SUPPLEMENT})
            answers["complete"].append((task_id, status))

    def freezer():
        while not stop.is_set():
            status, body = post(server.url, quality, "/processes/deposit_freeze/instances",
                                {"data": {"enterprise_id": ent_b, "disputed_fen": FREEZE_FEN,
                                          "dispute_reason": "抽检不合格（断电测试）"}})
            answers["freeze"].append((body or {}).get("id") if status == 201 else status)

    task_ids = list(admission_cases.values())
    threads = [threading.Thread(target=completer, args=(task_ids[k::3],)) for k in range(3)]
    threads.append(threading.Thread(target=freezer))
    for thread in threads:
        thread.start()
    # Kill once some work has been answered, while more is in flight.
    wait_for(lambda: len(answers["complete"]) >= CASES // 3, timeout=60, every=0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    killed_log = server.log_path.read_text(errors="replace")
    answered = {task_id for task_id, status in answers["complete"] if status == 200}
    assert answered, answers
    assert len(answered) < CASES, "the server died after all the work: kill it sooner"

    # Time passes while the server is down: every supplement deadline falls due.
    with app.app_context():
        clock.load_offset()
        clock.advance("P40D")
        db.session.commit()
        db.session.remove()

    restarted = gunicorn(database_url, tmp_path / "after.log", workers=2, scheduler=True)
    try:
        with app.app_context():
            sent_back = set(db.session.scalars(select(HumanTask.instance_id).where(
                HumanTask.id.in_(list(admission_cases.values())),
                HumanTask.state == "completed")).all())
            db.session.remove()
        # Every completion the server answered is in the database.
        answered_cases = {i for i, t in admission_cases.items() if t in answered}
        assert answered_cases <= sent_back

        def lapsed():
            with app.app_context():
                done = db.session.scalar(select(func.count()).where(
                    Instance.id.in_(sent_back), Instance.status == "completed"))
                db.session.remove()
            return done == len(sent_back)

        assert wait_for(lapsed, timeout=120), restarted.log()[-3000:]
        time.sleep(1)       # a second scheduler round, which must find nothing more to fire
    finally:
        restarted.stop()

    with app.app_context():
        # The timers that fell due during the outage fired once each, only where they existed.
        fired = dict(db.session.execute(
            select(HistoryEntry.instance_id, func.count())
            .where(HistoryEntry.instance_id.in_(list(admission_cases)),
                   HistoryEntry.kind == "timer").group_by(HistoryEntry.instance_id)).all())
        assert fired == {i: 1 for i in sent_back}

        # No half-applied step: every case's inbox and timer rows match its workflow.
        for instance in db.session.scalars(select(Instance)).all():
            assert runtime.projection_problems(instance) == [], instance.id

        # Each committed freeze case has exactly its one frozen entry; the ledger reconciles.
        freezes = db.session.scalars(select(Instance.id).where(
            Instance.process_key == "deposit_freeze")).all()
        entries = db.session.scalars(select(ledger.DepositEntry).where(
            ledger.DepositEntry.enterprise_id == ent_b,
            ledger.DepositEntry.kind == "frozen")).all()
        assert sorted(e.instance_id for e in entries) == sorted(freezes)
        created = {i for i in answers["freeze"] if isinstance(i, int)}
        assert created <= set(freezes)
        assert audit.verify_chain(db.session).ok
        db.session.remove()

    reconcile = app.test_cli_runner().invoke(args=["reconcile-ledger"])
    assert reconcile.exit_code == 0, reconcile.output
    assert "Traceback" not in killed_log + restarted.log(), restarted.log()[-3000:]
