"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import text

from conftest import POSTGRES
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
