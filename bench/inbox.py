"""The inbox: time to list one department's first page with 1,000,000 task rows.

The rows are cloned admission cases (``bench.admission.Cloner``): 90% finished cases
of the last three years, 10% running (each with its open tasks, timers and history), so
the database looks like a county office after years of cases. Timed: the whole API
request ``GET /api/v1/tasks?group=market`` in process (token check, the page query, the
total, the JSON), as the market department's lead sends it.
"""

import time

from sqlalchemy import func, select

from bench import admission
from bench.common import Figure, make_app, percentile, scratch_sqlite, seed

TASK_ROWS = 1_000_000
QUICK_TASK_ROWS = 100_000
REQUESTS = 300
TARGET_MS = 20.0


def _fill(cloner, rows_wanted, now):
    from engine.db import session
    from engine.models import HumanTask

    have = session().scalar(select(func.count(HumanTask.id)))
    while have < rows_wanted:
        # About six task rows per case; aim a little short, then top up.
        cases = max(100, int((rows_wanted - have) / 6.3))
        cloner.insert(session().connection(), cases, now)
        session().commit()
        have = session().scalar(select(func.count(HumanTask.id)))
    return have


def _time_requests(client, path, headers, count):
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append(time.perf_counter() - began)
        assert response.status_code == 200, response.get_json()
    return timings, response.get_json()


def run(options):
    from engine import accounts, clock, inbox
    from engine.db import session
    from engine.models import HumanTask, User

    wanted = QUICK_TASK_ROWS if options.quick else TASK_ROWS
    app = make_app(scratch_sqlite("inbox"))
    seed(app)
    with app.app_context():
        values = admission.step_values(app.extensions["brand_forms"])
        staff = admission.staff_users()
        snapshots = admission.capture_case(admission.make_applicants(1, "template")[0], staff,
                                           values)
        began = time.perf_counter()
        rows = _fill(admission.Cloner("sqlite", snapshots), wanted, clock.now())
        filled = time.perf_counter() - began
        open_rows = session().scalar(select(func.count(HumanTask.id)).where(
            HumanTask.state == "open"))
        market = session().scalars(select(User).where(User.username == "market")).one()
        token = accounts.issue_token(market, app.secret_key)

        # The engine call alone, for the note.
        engine_times = []
        for _ in range(100):
            began = time.perf_counter()
            inbox.list_tasks(market, group="market")
            engine_times.append(time.perf_counter() - began)
            session().rollback()

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    _time_requests(client, "/api/v1/tasks?group=market", headers, 20)  # warm
    first, body = _time_requests(client, "/api/v1/tasks?group=market", headers, REQUESTS)
    overdue, _ = _time_requests(client, "/api/v1/tasks?group=market&overdue=true", headers, 100)
    deep, _ = _time_requests(client, "/api/v1/tasks?group=market&page=50", headers, 100)

    p95 = percentile(first, 95)
    return [
        Figure("inbox", f"inbox first page, one group, {rows:,} task rows (p95)", p95 * 1000,
               "ms", f"{p95 * 1000:.1f} ms",
               reference=f"p50 {percentile(first, 50) * 1000:.1f} ms",
               target=f"<= {TARGET_MS:g} ms", met=p95 * 1000 <= TARGET_MS,
               note=f"SQLite; {open_rows:,} open rows, {body['total']:,} of them market's; "
                    f"API request in process, {REQUESTS} requests; list_tasks alone p95 "
                    f"{percentile(engine_times, 95) * 1000:.1f} ms; overdue filter p95 "
                    f"{percentile(overdue, 95) * 1000:.1f} ms; page 50 p95 "
                    f"{percentile(deep, 95) * 1000:.1f} ms; rows cloned in {filled:.0f} s"),
    ]
