"""Fixtures in the Flask tutorial's manner: ``app``, ``client``, ``api`` and factories.

The database is SQLite in a temporary file unless ``BRAND_TEST_DATABASE_URL`` names
another (``make test-postgres`` sets it to the local PostgreSQL).
"""

import os

import pytest
from sqlalchemy import text

from web import create_app
from web.cli import deploy_bpmn_dir
from web.demo import seed_demo
from web.extensions import db

POSTGRES = os.environ.get("BRAND_TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.fixture
def database_url(tmp_path):
    return os.environ.get("BRAND_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture
def app(database_url):
    app = create_app({"MODE": "test", "DATABASE_URL": database_url, "SCHEDULER": False,
                      "SECRET_KEY": "test-secret"})
    from datetime import timedelta

    from engine import clock

    # The clock's offset lives in the process: a test that moved it must not date this
    # test's demo data (certificates, deposits) in its future.
    clock.set_offset(timedelta(0))
    with app.app_context():
        if POSTGRES:
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        db.create_all()
        seed_demo()
        results = deploy_bpmn_dir(app)
        refused = [(name, [p.message() for p in problems])
                   for name, version, _c, problems in results if version is None]
        assert not refused, refused
        clock.load_offset()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def add_enterprise_logins(app, prefix, count, name):
    """``count`` registered enterprises, each with its login ``<prefix><n>`` (password
    ``demo``) and the name ``name.format(n)``; returns the usernames."""
    from engine import accounts, clock
    from engine.models import Enterprise

    usernames = []
    with app.app_context():
        for n in range(count):
            enterprise = Enterprise(name=name.format(n), kind="processor", status="registered",
                                    created_at=clock.now())
            db.session.add(enterprise)
            db.session.flush()
            accounts.create_user(f"{prefix}{n}", "demo", enterprise.name, groups=["enterprise"],
                                 enterprise_id=enterprise.id)
            usernames.append(f"{prefix}{n}")
        db.session.commit()
    return usernames


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """A JSON API client that logs in once per user and remembers the tokens."""

    def __init__(self, client):
        self.client = client
        self.tokens = {}

    def token(self, username, password="demo"):
        if username not in self.tokens:
            response = self.client.post("/api/v1/auth/token",
                                        json={"username": username, "password": password})
            assert response.status_code == 200, response.get_json()
            self.tokens[username] = response.get_json()["token"]
        return self.tokens[username]

    def call(self, method, path, user, json=None, expect=200):
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        response = self.client.open(f"/api/v1{path}", method=method, json=json, headers=headers)
        assert response.status_code == expect, (response.status_code, response.get_json())
        return response.get_json()

    def get(self, path, user, **kw):
        return self.call("GET", path, user, **kw)

    def post(self, path, user, json=None, **kw):
        return self.call("POST", path, user, json=json if json is not None else {}, **kw)


@pytest.fixture
def api(client):
    return Api(client)
