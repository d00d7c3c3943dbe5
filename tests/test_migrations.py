"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import POSTGRES
from flask_migrate import upgrade
from sqlalchemy import text

from web import create_app
from web.extensions import db


def test_migrations_match_the_models(database_url):
    app = create_app({"MODE": "test", "DATABASE_URL": database_url, "SCHEDULER": False,
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        if POSTGRES:
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert differences == []


def test_upgrade_chains_the_deposit_entries_written_before_the_ledger_had_a_chain(database_url):
    from engine import ledger

    app = create_app({"MODE": "test", "DATABASE_URL": database_url, "SCHEDULER": False,
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        if POSTGRES:
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade(revision="0001")
        db.session.execute(text(
            "INSERT INTO users (id, username, display_name, password_hash, active,"
            " token_generation) VALUES (1, 'fin', 'Finance', 'x', true, 0)"))
        db.session.execute(text(
            "INSERT INTO enterprises (id, name, status, created_at) VALUES"
            " (1, 'A', 'admitted', '2026-01-02 03:04:05'),"
            " (2, 'B', 'admitted', '2026-01-02 03:04:05')"))
        db.session.execute(text(
            "INSERT INTO deposit_entries (enterprise_id, kind, amount_fen, approved_by, note,"
            " created_at) VALUES (1, 'paid_in', 500000, 1, 'first', '2026-01-03 09:00:00'),"
            " (2, 'paid_in', 300000, 1, NULL, '2026-01-03 09:30:00'),"
            " (1, 'paid_in', 20000, 1, 'second', '2026-01-04 10:00:00')"))
        db.session.commit()
        upgrade()
        sequences = db.session.execute(text(
            "SELECT enterprise_id, sequence FROM deposit_entries ORDER BY id")).all()
        result = ledger.reconcile()
        db.session.remove()
        db.engine.dispose()
    assert [tuple(row) for row in sequences] == [(1, 1), (2, 1), (1, 2)]
    assert result.problems == []
    assert result.positions[1].balance_fen == 520000
