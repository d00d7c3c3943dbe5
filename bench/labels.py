"""Labels: issuing 100,000 with their CSV ready, and verification over HTTP against the
bare signature check (this was the stand-alone ``bench/labels.py``; same figures, now
a section of the suite: ``python -m bench labels verification``).

Issue: ``engine.labels.issue_label_batch`` (quota taken, serials allocated, 100,000
Ed25519 signatures, rows inserted: executemany on SQLite, COPY on PostgreSQL, commit),
then the CSV export streamed to the end, as ``GET .../codes.csv`` sends it.

Verification: the served app (gunicorn, see ``bench.common.Server``) answers
``GET /api/v1/verify/<code>`` for genuine codes from 8 concurrent clients; every answer
commits its scan (a ``label_scans`` row and the label's counter) before it is sent, and
the counts are checked against the answers afterwards. The reference is
``labelcodes.signature_valid`` in a loop in one process, measured in the same run.
"""

import io
import threading
import time

from sqlalchemy import func, select

from bench.common import Client, Figure, Server, make_app, postgres_url, scratch_sqlite, seed

COUNT = 100_000
QUICK_COUNT = 10_000
ISSUE_TARGET_S = 10.0
VERIFY_CODES = 20_000
VERIFY_SECONDS = 10.0
CLIENTS = 8
VERIFY_TARGET = 5_000


def _databases(options, label):
    urls = [("SQLite", scratch_sqlite(label), "")]
    if options.no_postgres:
        return urls, "PostgreSQL skipped (--no-postgres)"
    url, why = postgres_url()
    if url is None:
        return urls, f"PostgreSQL figures skipped: {why}"
    return urls + [("PostgreSQL", url, "")], ""


def _licence_and_staff(quota):
    """An active licence of a fresh enterprise, made directly (not via the process), and a
    market department user to issue its labels."""
    from engine import accounts, clock, licensing
    from engine.db import session
    from engine.licensing import Licence
    from engine.models import Enterprise

    accounts.ensure_groups()
    licensing.ensure_grades()
    enterprise = Enterprise(name="bench", kind="cooperative", status="admitted",
                            created_at=clock.now())
    session().add(enterprise)
    session().flush()
    market = accounts.create_user("bench-market", "bench", "bench", groups=["market"])
    today = clock.now().date()
    licence = Licence(enterprise_id=enterprise.id, product="black_cardamom", grade_code="green",
                      base_location="bench", area_centimu=100_000_000, yield_grams_per_mu=100_000,
                      package_grams=500, label_quota=quota, status="active", number="BENCH-1",
                      created_at=clock.now(), valid_from=today,
                      valid_until=today.replace(year=today.year + 1))
    session().add(licence)
    session().commit()
    return licence, market


def _issue(count):
    """Issue a batch of ``count``; returns (batch, seconds to commit, seconds with CSV, CSV)."""
    from engine import labels
    from engine.db import session
    from web.label_exports import csv_response

    licence, market = _licence_and_staff(count)
    began = time.perf_counter()
    batch = labels.issue_label_batch(licence, count, market)
    session().commit()
    issued = time.perf_counter() - began
    out = io.BytesIO()
    for chunk in csv_response(batch).response:
        out.write(chunk.encode() if isinstance(chunk, str) else chunk)
    return batch, issued, time.perf_counter() - began, out.getvalue()


def run_issue(options):
    count = QUICK_COUNT if options.quick else COUNT
    databases, skipped = _databases(options, "labels")
    figures = []
    for name, url, _ in databases:
        app = make_app(url, LABEL_BATCH_MAX=count)
        with app.test_request_context():
            _batch, issued, total, csv = _issue(count)
        lines = csv.count(b"\n") - 1
        url_length = len(csv.split(b"\n")[1].split(b",")[1])
        figures.append(Figure(
            "labels", f"label issue, {count:,} labels with CSV ready ({name})", total, "s",
            f"{total:.1f} s", reference=f"signed, inserted, committed in {issued:.1f} s",
            target=f"<= {ISSUE_TARGET_S:g} s", met=total <= ISSUE_TARGET_S,
            note=f"{lines:,} CSV rows, URL length {url_length}; one process"))
    if skipped:
        figures[-1].note += f"; {skipped}"
    return figures


def bare_verify_rate(public, parsed, seconds=2.0):
    """Signature checks per second in this process (one core)."""
    from engine import labelcodes

    checked = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for code in parsed[:2_000]:
            assert labelcodes.signature_valid(public, code)
        checked += min(2_000, len(parsed))
    return checked / (time.perf_counter() - began)


def _load(base, codes, seconds, clients=CLIENTS):
    """``clients`` threads verify codes (each its own slice) for ``seconds``; returns the
    number of answers per status code and per label status, and the elapsed time."""
    statuses, verdicts, lock = {}, {}, threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def work(index):
        client = Client(base)
        mine = codes[index::clients]
        seen_status, seen_verdict = {}, {}
        start.wait()
        i = 0
        while time.perf_counter() < stop_at[0]:
            status, body = client.request("GET", f"/api/v1/verify/{mine[i % len(mine)]}")
            i += 1
            seen_status[status] = seen_status.get(status, 0) + 1
            verdict = body.get("status") if isinstance(body, dict) else None
            seen_verdict[verdict] = seen_verdict.get(verdict, 0) + 1
        client.close()
        with lock:
            for key, value in seen_status.items():
                statuses[key] = statuses.get(key, 0) + value
            for key, value in seen_verdict.items():
                verdicts[key] = verdicts.get(key, 0) + value

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return statuses, verdicts, time.perf_counter() - began


def run_verification(options):
    from engine import labelcodes, labelkeys, labels
    from engine.db import session
    from engine.labels import Label, LabelScan

    seconds = 3.0 if options.quick else VERIFY_SECONDS
    databases, skipped = _databases(options, "verify")
    figures = []
    for name, url, _ in databases:
        app = make_app(url)
        seed(app)
        with app.test_request_context():
            licence, market = _licence_and_staff(VERIFY_CODES)
            batch = labels.issue_label_batch(licence, VERIFY_CODES, market)
            session().commit()
            codes = [code for _serial, code in labels.iter_batch_codes(batch)]
            public = labelkeys.public_key(session().get(labelkeys.SigningKey, batch.key_id))
        parsed = [labelcodes.decode(code) for code in codes[:2_000]]
        bare_before = bare_verify_rate(public, parsed)
        with Server(url) as server:
            _load(server.base, codes, 1.0)  # warm every worker
            with app.app_context():
                scans_before = session().scalar(select(func.count(LabelScan.id)))
                session().remove()
            statuses, verdicts, elapsed = _load(server.base, codes, seconds)
            describe = server.describe
        bare = (bare_before + bare_verify_rate(public, parsed)) / 2
        with app.app_context():
            scans = session().scalar(select(func.count(LabelScan.id))) - scans_before
            counted = session().scalar(select(func.sum(Label.scan_count)))
            total_scans = session().scalar(select(func.count(LabelScan.id)))
            session().remove()
        answered = statuses.get(200, 0)
        rate = answered / elapsed
        durable = scans == answered and counted == total_scans
        figures.append(Figure(
            "verification", f"label verification over HTTP ({name})", rate, "/s",
            f"{rate:,.0f} /s", reference=f"bare signature check {bare:,.0f} /s",
            ratio=rate / bare, target=f">= {VERIFY_TARGET:,} /s", met=rate >= VERIFY_TARGET,
            note=f"{CLIENTS} clients for {elapsed:.0f} s, {describe}, client in the same "
                 f"2 CPUs; answers {statuses}, verdicts {verdicts}; every answered scan "
                 f"committed: {'yes' if durable else 'NO'} ({scans:,} new scan rows)"))
    if skipped:
        figures[-1].note += f"; {skipped}"
    return figures
