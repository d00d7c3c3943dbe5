"""The serving entry point: ``flask --app web.wsgi run`` or ``gunicorn web.wsgi:app``.

Unlike ``create_app`` alone (used by CLI commands and tests), this also starts the
timer scheduler in the process when ``BRAND_SCHEDULER`` is on.
"""

from web import create_app, start_scheduler

app = create_app()
if app.config["SCHEDULER"]:
    start_scheduler(app)
