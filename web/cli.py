"""Command-line verbs: ``flask --app web <command>``."""

import click
from flask import current_app

from engine import accounts, clock, deploy, licensing, services
from engine.timers import fire_due_timers
from web import transaction
from web.extensions import db


def deploy_bpmn_dir(app, deployed_by="system"):
    """Deploy every diagram in BPMN_DIR; return the results (see ``deploy.deploy_directory``)."""
    results = deploy.deploy_directory(app.config["BPMN_DIR"], app.extensions["brand_forms"],
                                      deployed_by, script_names=services.script_names())
    db.session.commit()
    return results


def register(app):
    @app.cli.command("deploy")
    def deploy_command():
        """Deploy every diagram under bpmn/ (identical content creates no new version)."""
        accounts.ensure_groups()
        licensing.ensure_grades()
        db.session.commit()
        failed = False
        for name, version, created, problems in deploy_bpmn_dir(current_app):
            if version is None:
                failed = True
                click.echo(f"REFUSED {name}")
                for problem in problems:
                    click.echo(f"  {problem.message()}")
            else:
                state = "new" if created else "unchanged"
                click.echo(f"{name}: {version.process_key} v{version.version} ({state})")
        if failed:
            raise SystemExit(1)

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo departments, users and enterprises (demo and test modes only)."""
        from web.demo import seed_demo

        if current_app.config["MODE"] == "production":
            raise click.ClickException("demo users are never created in production")
        for line in seed_demo():
            click.echo(line)

    @app.cli.command("clock-advance")
    @click.argument("duration")
    def clock_advance_command(duration):
        """Move the virtual clock forward (ISO duration, e.g. P3D) and fire due timers."""
        if current_app.config["MODE"] == "production":
            raise click.ClickException("the virtual clock does not exist in production")
        clock.load_offset()
        try:
            now = clock.advance(duration)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        fired = fire_due_timers(transaction)
        click.echo(f"now {now.isoformat()}Z, fired {fired} timer(s)")

    @app.cli.command("fire-timers")
    def fire_timers_command():
        """Fire every timer that is due now (for a cron-style deployment without the scheduler)."""
        clock.load_offset()
        click.echo(f"fired {fire_due_timers(transaction)} timer(s)")

    @app.cli.command("run-scheduler")
    def run_scheduler_command():
        """Run only the timer scheduler, in its own process (production layout)."""
        import signal
        import threading

        from web import start_scheduler

        with app.app_context():
            clock.load_offset()
        start_scheduler(current_app._get_current_object())
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo("scheduler running; Ctrl-C to stop")
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass

    @app.cli.command("verify-audit")
    def verify_audit_command():
        """Check the audit chain from its first record; name the first one that does not hold."""
        from engine import audit

        check = audit.verify_chain(db.session)
        if check.ok:
            click.echo(f"audit chain intact: {check.records} record(s)")
            return
        click.echo(f"audit chain broken at sequence {check.first_bad_sequence} "
                   f"(record id {check.first_bad_id}): {check.problem}; "
                   f"{check.records} record(s) before it hold")
        raise SystemExit(1)
