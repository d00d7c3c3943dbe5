"""Label figures: seconds to issue 100,000 labels with their CSV ready, and signature checks
per second.

    .venv/bin/python bench/labels.py                   # a fresh SQLite file
    LABELS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_db \\
        .venv/bin/python bench/labels.py               # an empty PostgreSQL database

A plain script: it prints figures and asserts nothing about time. The database it
is given is wiped (SQLite: a temporary file; PostgreSQL: the public schema).
"""

import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

COUNT = int(os.environ.get("LABELS", "100000"))
VERIFY_COUNT = 20_000


def _app(url):
    from web import create_app
    from web.extensions import db

    app = create_app({"MODE": "test", "DATABASE_URL": url, "SCHEDULER": False,
                      "SECRET_KEY": "bench-secret", "LABEL_BATCH_MAX": COUNT})
    with app.app_context():
        if url.startswith("postgresql"):
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        db.create_all()
    return app


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


def main():
    logging.basicConfig(level=logging.WARNING)
    from engine import labelcodes, labelkeys, labels
    from engine.db import session
    from web.label_exports import csv_response

    url = os.environ.get("LABELS_BENCH_DATABASE_URL")
    workdir = tempfile.TemporaryDirectory()
    url = url or f"sqlite:///{workdir.name}/bench.sqlite"
    app = _app(url)

    with app.test_request_context():
        licence, market = _licence_and_staff(COUNT)

        started = time.perf_counter()
        batch = labels.issue_label_batch(licence, COUNT, market)
        session().commit()
        issued = time.perf_counter() - started
        out = io.BytesIO()
        for chunk in csv_response(batch).response:
            out.write(chunk.encode() if isinstance(chunk, str) else chunk)
        total = time.perf_counter() - started
        lines = out.getvalue().count(b"\n") - 1
        first_url = out.getvalue().split(b"\n")[1].split(b",")[1].decode()

        codes = [code for _serial, code in labels.iter_batch_codes(batch)][:VERIFY_COUNT]
        key = session().get(labelkeys.SigningKey, batch.key_id)
        public = labelkeys.public_key(key)
        parsed = [labelcodes.decode(code) for code in codes]
        started = time.perf_counter()
        ok = sum(labelcodes.signature_valid(public, p) for p in parsed)
        verify_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for code in codes[:1000]:
            labels.verify_code(code, labels.make_place(24.7, 97.9))
        session().commit()
        full_seconds = time.perf_counter() - started

    dialect = url.split(":", 1)[0]
    print(f"database: {dialect}; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs (figures are per one process)")
    print(f"labels issued: {COUNT} ({lines} CSV rows), URL length {len(first_url)}")
    print(f"issue batch (sign + insert + commit): {issued:.2f} s")
    print(f"issue + CSV ready: {total:.2f} s")
    print(f"bare signature verifications: {ok / verify_seconds:,.0f} per second "
          f"({ok} checked in {verify_seconds:.2f} s, one process)")
    print(f"verify_code with scan recorded (1,000 codes, one commit): "
          f"{1000 / full_seconds:,.0f} per second")
    workdir.cleanup()


if __name__ == "__main__":
    main()
