"""The Flask application factory."""

import logging
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, g, has_request_context, request, session
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from config import load_settings
from engine import accounts, audit, clock, runtime, schema  # noqa: F401
from engine import db as engine_db
from engine.forms import FormRegistry
from engine.timers import TimerScheduler
from web import hardening, security
from web.extensions import babel, csrf, db, login_manager, migrate

logger = logging.getLogger(__name__)

LOCALES = ("zh_CN", "en")


def create_app(overrides=None):
    settings = load_settings(overrides)
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.config.update(settings)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings["DATABASE_URL"]),
        BABEL_DEFAULT_LOCALE=settings["DEFAULT_LOCALE"],
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        WTF_CSRF_TIME_LIMIT=None,
        TESTING=settings["MODE"] == "test",
    )
    hardening.register(app)
    security.register(app)
    Path(app.instance_path).mkdir(exist_ok=True)

    db.init_app(app)
    if settings["DATABASE_URL"].startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_pragmas)
    engine_db.bind_session(lambda: db.session)
    audit.install()
    audit.bind_actor(_request_actor, _command_actor)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
                     render_as_batch=True)
    babel.init_app(app, locale_selector=_select_locale)
    csrf.init_app(app)
    login_manager.init_app(app)

    if settings["MODE"] == "test":
        accounts.use_fast_hashing()

    forms = FormRegistry(settings["FORMS_DIR"])
    app.extensions["brand_forms"] = forms
    runtime.configure(forms, settings["SCRIPT_TIME_LIMIT"])

    _register_blueprints(app)
    _register_clock(app)
    from web import cli, display, errors, views_common

    errors.register(app)
    cli.register(app)
    views_common.register(app)
    display.register(app)

    # The scheduler is started by the serving entry point (web/wsgi.py), never by CLI commands.
    app.extensions["brand_scheduler"] = None
    return app


def _request_actor():
    """Who acts in this request, for the audit chain: the token's or the session's user, else
    the anonymous visitor's address; the action is the method and the URL rule."""
    if not has_request_context():
        return None
    name = g.get("audit_actor_name")
    if name is None:
        name = _username(g.get("api_user") or current_user._get_current_object())
        if name is not None:
            g.audit_actor_name = name       # the user object may be detached by a later commit
    name = name or f"anonymous@{request.remote_addr}"
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return audit.Actor(name, f"{request.method} {rule}")


def _username(user):
    """The user's name without touching an expired or detached object (None: anonymous)."""
    from engine.models import User

    state = sa_inspect(user, raiseerr=False)
    if state is None or state.identity is None:
        return None
    name = state.dict.get("username")
    if name is None:
        found = db.session.get(User, state.identity[0])
        name = found.username if found is not None else None
    return name


def _command_actor():
    """A ``flask --app web <command>`` run: the operator's account name and the command."""
    import getpass

    import click

    context = click.get_current_context(silent=True)
    if context is None:
        return None
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    return audit.Actor(f"cli:{operator}", context.command_path)


def _sqlite_pragmas(dbapi_connection, _record):
    """Write-ahead logging: readers never wait for the writer, and a commit is one fsync of
    the log instead of two of a rollback journal. ``synchronous=FULL`` keeps every commit
    on disk before it is answered (a scan counted is a scan kept, even in a power cut)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _engine_options(url):
    if url.startswith("sqlite"):
        # Wait for a writer instead of failing at once; a lost race is detected by version columns.
        return {"connect_args": {"timeout": 15}}
    return {"pool_pre_ping": True}


def _select_locale():
    chosen = session.get("locale") or request.args.get("lang")
    if chosen in LOCALES:
        return chosen
    return "zh_CN"


def _register_blueprints(app):
    from web.blueprints import (
        api,
        api_complaints,
        api_deposits,
        api_labels,
        api_licences,
        auth,
        cases,
        complaints,
        finance,
        inbox,
        office_rules,
        portal,
        portal_labels,
        verify,
        workcalendar,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(api_licences.bp)
    csrf.exempt(api_licences.bp)
    verify.init_app(app)
    app.register_blueprint(verify.bp)
    app.register_blueprint(api_labels.bp)
    csrf.exempt(api_labels.bp)
    app.register_blueprint(portal_labels.bp)
    app.register_blueprint(api_deposits.bp)
    csrf.exempt(api_deposits.bp)
    app.register_blueprint(api_complaints.bp)
    csrf.exempt(api_complaints.bp)
    app.register_blueprint(complaints.bp)
    app.register_blueprint(finance.bp)
    app.register_blueprint(workcalendar.bp)
    app.register_blueprint(office_rules.bp)
    from web.blueprints import api_certificates, certificates, office_grades

    app.register_blueprint(office_grades.bp)
    app.register_blueprint(certificates.bp)
    app.register_blueprint(api_certificates.bp)
    csrf.exempt(api_certificates.bp)
    from web.blueprints import dashboard

    app.register_blueprint(dashboard.bp)
    from web.blueprints import admin_processes, api_processes, brand, expulsions, notices

    app.register_blueprint(brand.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(expulsions.bp)

    from web.blueprints import api_royalties, royalties

    app.register_blueprint(royalties.bp)
    app.register_blueprint(api_royalties.bp)
    csrf.exempt(api_royalties.bp)

    from web.blueprints import api_inspections, inspections

    app.register_blueprint(inspections.bp)
    app.register_blueprint(api_inspections.bp)
    csrf.exempt(api_inspections.bp)
    app.register_blueprint(admin_processes.bp)
    # Token callers need no CSRF token; session callers (the modeler) are checked in the view.
    app.register_blueprint(api_processes.bp)
    csrf.exempt(api_processes.bp)
    if app.config["MODE"] != "production":
        app.register_blueprint(api.clock_bp)
        csrf.exempt(api.clock_bp)


def _register_clock(app):
    """Outside production the clock's offset lives in the database: read it per request."""
    if app.config["MODE"] == "production":
        return

    @app.before_request
    def sync_clock():
        clock.load_offset()


@contextmanager
def transaction():
    """One unit of work for jobs outside a request: commit on success, roll back on error."""
    try:
        yield db.session
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        db.session.remove()


def start_scheduler(app):
    @contextmanager
    def in_app_transaction():
        with app.app_context():
            if app.config["MODE"] != "production":
                clock.load_offset()
            with transaction() as s:
                yield s

    scheduler = TimerScheduler(in_app_transaction)
    app.extensions["brand_scheduler"] = scheduler

    @event.listens_for(Session, "after_commit")
    def wake_for_new_timers(committed):
        due = committed.info.pop("earliest_new_timer", None)
        if due is not None:
            scheduler.notice(due)

    @event.listens_for(Session, "after_rollback")
    def forget_rolled_back_timers(rolled_back):
        rolled_back.info.pop("earliest_new_timer", None)

    scheduler.start()
    logger.info("timer scheduler started")
    return scheduler
