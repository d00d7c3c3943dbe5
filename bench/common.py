"""What the benchmark sections share: databases, the app, bulk inserts, statistics, a served
app in a subprocess and a small HTTP client.

Every section runs in its own process (see ``bench.__main__``), so global state of one
(the spec cache, the virtual clock, a scheduler's session listeners) never leaks into
another, and each starts from an empty database of its own.
"""

import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/bench_db")
# Databases other people work in on the shared PostgreSQL server: never wiped by a benchmark.
PROTECTED = frozenset({"test", "brand_lead", "labels_db", "ledger_db", "versions_db",
                       "postgres", "template0", "template1"})
SECRET = "bench-secret-key-not-for-production"
# The datetime text SQLAlchemy's SQLite dialect stores (string comparison must match it).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass
class Figure:
    """One line of the results table."""

    section: str
    name: str
    value: float | None
    unit: str
    shown: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self):
        return asdict(self)


def quiet_logging():
    logging.basicConfig(level=logging.ERROR)
    for name in ("engine", "web", "apscheduler"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- statistics ----------------------------------------------------------------------------

def percentile(values, p):
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values):
    return percentile(values, 50)


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


# -- databases -----------------------------------------------------------------------------

def postgres_url():
    """The PostgreSQL URL to benchmark on, or None (with the reason) when unreachable."""
    name = PG_URL.rsplit("/", 1)[-1].split("?")[0]
    if name in PROTECTED:
        return None, f"refusing to wipe database {name!r}: set BENCH_PG_URL to a scratch one"
    try:
        _create_database_if_missing(name)
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL figures
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"PostgreSQL not reachable at {PG_URL} ({first[:120]})"
    return PG_URL, ""


def _create_database_if_missing(name):
    """A fresh machine has the server but not the scratch database: create it (through the
    server's ``postgres`` database, outside a transaction, as CREATE DATABASE requires)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return
    server = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    try:
        with server.connect() as connection:
            exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                       {"n": name})
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()


def scratch_sqlite(label):
    """A fresh SQLite file in a temporary directory removed with the process."""
    directory = tempfile.mkdtemp(prefix=f"bench-{label}-")
    return f"sqlite:///{directory}/bench.sqlite"


def make_app(url, mode="test", **overrides):
    """The application on ``url`` with an empty schema (PostgreSQL: public schema recreated)."""
    from web import create_app
    from web.extensions import db

    settings = {"MODE": mode, "DATABASE_URL": url, "SCHEDULER": False, "SECRET_KEY": SECRET,
                "RATELIMIT_ENABLED": False}
    settings.update(overrides)
    app = create_app(settings)
    with app.app_context():
        if url.startswith("postgresql"):
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        db.create_all()
    return app


def seed(app):
    """Departments, demo users, grades and every diagram of ``bpmn/`` deployed."""
    from engine import clock
    from web.cli import deploy_bpmn_dir
    from web.demo import seed_demo

    with app.app_context():
        seed_demo()
        results = deploy_bpmn_dir(app)
        refused = [name for name, version, _c, _p in results if version is None]
        if refused:
            raise RuntimeError(f"diagrams refused: {refused}")
        clock.load_offset()


def dialect(url):
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def db_value(value, kind):
    """A Python value as the DBAPI of ``kind`` takes it in a raw insert."""
    if kind == "sqlite":
        if hasattr(value, "strftime"):
            return value.strftime(SQLITE_DATETIME)
        if isinstance(value, bool):
            return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def bulk_insert(connection, table, columns, rows):
    """Insert tuples on the SQLAlchemy ``connection`` (and so in its transaction):
    executemany on SQLite, COPY on PostgreSQL. Values must already be DB values."""
    raw = connection.connection.dbapi_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    cursor = raw.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


# -- a served app --------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``web.wsgi:app`` under gunicorn in a subprocess, in production mode, on loopback.

    The scheduler is off (timers are measured on their own); the public rate limit is
    raised far above the load so its bookkeeping is paid but nothing is refused.
    """

    def __init__(self, url, workers=2, threads=4, log=None):
        self.port = free_port()
        self.base = f"127.0.0.1:{self.port}"
        env = dict(os.environ, BRAND_MODE="production", BRAND_DATABASE_URL=url,
                   BRAND_SECRET_KEY=SECRET, BRAND_SCHEDULER="0",
                   BRAND_PUBLIC_RATE_LIMIT="100000000 per minute",
                   BRAND_PUBLIC_BASE_URL="http://127.0.0.1:5000")
        self.command = [sys.executable, "-m", "gunicorn", "-w", str(workers),
                        "-k", "gthread", "--threads", str(threads), "-b", self.base,
                        "--log-level", "warning", "web.wsgi:app"]
        self.describe = f"gunicorn -w {workers} -k gthread --threads {threads}"
        self._log = open(log or os.devnull, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                status, _ = Client(self.base).request("GET", "/api/v1/openapi.json")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closed it."""

    def __init__(self, base):
        self.base = base
        self.connection = None

    def request(self, method, path, body=None, token=None):
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in (1, 2):
            if self.connection is None:
                host, port = self.base.split(":")
                self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, (json.loads(data) if data else None)
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None
