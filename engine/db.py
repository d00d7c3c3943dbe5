"""The declarative base and the session accessor the engine uses.

The engine never imports Flask: the host (the Flask app, a CLI command, a
benchmark) binds a session getter once with ``bind_session`` and the engine
asks ``session()`` for it. The host owns the transaction: services flush, the
host commits once at the edge or rolls back.
"""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_session_getter = None


def bind_session(getter):
    """Tell the engine how to reach the current session (a zero-argument callable)."""
    global _session_getter
    _session_getter = getter


def session():
    """The session of the current request or job."""
    if _session_getter is None:
        raise RuntimeError("engine.db.bind_session() was not called by the host")
    return _session_getter()


def is_postgres():
    return session().get_bind().dialect.name == "postgresql"
