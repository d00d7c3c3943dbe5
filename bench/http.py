"""HTTP task completion: latency of ``POST /api/v1/tasks/<id>/complete`` with 8 concurrent
clients, on SQLite and on PostgreSQL.

The app is served by gunicorn in a subprocess (``bench.common.Server``, production
mode). Each client walks its own admission cases through the API as the departments
would: it files the application as its enterprise, then completes the six tasks with
the market, quality and finance users' tokens and its own, taking each task's id from
the previous answer (no inbox listing in between). Only completions are timed; each
client's first case warms the workers and is not counted. Tokens are issued directly
(no password hashing in the loop).
"""

import threading
import time

from bench import admission
from bench.common import (
    Client,
    Figure,
    Server,
    make_app,
    percentile,
    postgres_url,
    scratch_sqlite,
    seed,
)

CLIENTS = 8
CASES = 10  # per client, after one warm-up case
QUICK_CASES = 2
TARGET_MS = 25.0


def _open_task(instance, spec):
    return next(t["id"] for t in instance["open_tasks"] if t["task"] == spec)


def _walk(client, tokens, enterprise_token, timings, errors):
    """One admission case to the end; appends each completion's seconds to ``timings``."""
    status, instance = client.request("POST", "/api/v1/processes/admission_review/instances",
                                      {"data": admission.APPLICATION}, enterprise_token)
    if status != 201:
        errors.append(("start", status, instance))
        return
    for who, spec, data in admission.STEPS:
        token = enterprise_token if who == "enterprise" else tokens[who]
        task_id = _open_task(instance, spec)
        began = time.perf_counter()
        status, body = client.request("POST", f"/api/v1/tasks/{task_id}/complete",
                                      {"data": data}, token)
        timings.append(time.perf_counter() - began)
        if status != 200:
            errors.append((spec, status, body))
            return
        instance = body["instance"]


def _measure(url, cases):
    from engine import accounts
    from engine.db import session

    app = make_app(url)
    seed(app)
    with app.app_context():
        staff = admission.staff_users()
        tokens = {name: accounts.issue_token(user, app.secret_key)
                  for name, user in staff.items()}
        applicants = admission.make_applicants(CLIENTS * (cases + 1), "http")
        applicant_tokens = [accounts.issue_token(u, app.secret_key) for u in applicants]
        session().remove()
    timings, errors = [], []
    start = threading.Barrier(CLIENTS + 1)

    def client_work(index, server):
        client = Client(server.base)
        mine = applicant_tokens[index::CLIENTS]
        _walk(client, tokens, mine[0], [], errors)  # warm-up case
        start.wait()
        for token in mine[1:]:
            _walk(client, tokens, token, timings, errors)
        client.close()

    with Server(url) as server:
        threads = [threading.Thread(target=client_work, args=(i, server))
                   for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        describe = server.describe
    return timings, errors, elapsed, describe


def run(options):
    cases = QUICK_CASES if options.quick else CASES
    databases = [("SQLite", scratch_sqlite("http"))]
    skipped = "PostgreSQL skipped (--no-postgres)" if options.no_postgres else ""
    if not options.no_postgres:
        url, why = postgres_url()
        if url:
            databases.append(("PostgreSQL", url))
        else:
            skipped = f"PostgreSQL figures skipped: {why}"
    figures = []
    for name, url in databases:
        timings, errors, elapsed, describe = _measure(url, cases)
        p50, p99 = percentile(timings, 50), percentile(timings, 99)
        note = (f"{len(timings)} completions by {CLIENTS} concurrent clients in "
                f"{elapsed:.1f} s ({len(timings) / elapsed:.0f}/s), {describe}, clients on "
                f"the same 2 CPUs; max {max(timings) * 1000:.0f} ms")
        if errors:
            note += f"; {len(errors)} errors, first {errors[0][:2]}"
        figures.append(Figure(
            "http", f"HTTP completion, {CLIENTS} clients ({name}) p99", p99 * 1000, "ms",
            f"{p99 * 1000:.0f} ms", reference=f"p50 {p50 * 1000:.0f} ms",
            target=f"<= {TARGET_MS:g} ms", met=p99 * 1000 <= TARGET_MS and not errors,
            note=note))
    if skipped:
        figures[-1].note += f"; {skipped}"
    return figures
