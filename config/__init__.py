"""Every setting, declared once with its default.

Values come from the defaults below, then from environment variables prefixed
``BRAND_`` (``BRAND_DATABASE_URL``, ``BRAND_MODE``...), then from the overrides a
caller (a test) passes. ``load_settings`` checks the result and fails fast with
a message that names the setting.
"""

import os
import secrets
from pathlib import Path

from limits import parse_many

ROOT = Path(__file__).resolve().parent.parent

MODES = ("production", "demo", "test")

DEFAULTS = {
    # production | demo | test. The virtual clock and demo users exist only outside production.
    "MODE": "demo",
    "DATABASE_URL": f"sqlite:///{ROOT / 'instance' / 'brand.sqlite'}",
    "SECRET_KEY": "",
    "BPMN_DIR": str(ROOT / "bpmn"),
    "FORMS_DIR": str(ROOT / "forms"),
    # Run the timer scheduler inside this process (off for tests, which fire timers explicitly).
    "SCHEDULER": True,
    # Seconds a diagram script may run before it is stopped.
    "SCRIPT_TIME_LIMIT": 1.0,
    "DEFAULT_LOCALE": "zh_CN",
    "PAGE_SIZE": 20,
    # Largest request body accepted, in bytes (BPMN uploads included).
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    # Lifetime of an API token, in seconds.
    "TOKEN_MAX_AGE": 12 * 3600,
    # The public site root printed in label QR codes (no path): upper-cased in the QR code.
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    # Largest label batch one request may issue, and PDF pages one export may render.
    "LABEL_BATCH_MAX": 200_000,
    "LABEL_PDF_MAX_PAGES": 50,
    # Rate limit of the public verification endpoints, per client address (Flask-Limiter).
    "PUBLIC_RATE_LIMIT": "60 per minute",
    "RATELIMIT_ENABLED": True,
    # memory:// keeps counts per process; use redis://host:6379 when several processes serve.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Failed sign-ins (the login form and POST /api/v1/auth/token together), counted per
    # client address and per username; "" turns the limit off. Off in test mode unless set.
    "LOGIN_RATE_LIMIT": "10 per minute;50 per hour",
    # Session and remember-me cookies only over HTTPS; unset means on in production only.
    "SECURE_COOKIES": None,
    # Strict-Transport-Security max-age in seconds, sent in production only; 0 sends none.
    "HSTS_MAX_AGE": 365 * 24 * 3600,
}

# Read by the test suite, not by the application.
TEST_HARNESS_VARIABLES = {"BRAND_TEST_DATABASE_URL", "BRAND_BROWSER_TESTS", "BRAND_CHROMIUM"}

_INT_KEYS = {"PAGE_SIZE", "MAX_CONTENT_LENGTH", "TOKEN_MAX_AGE", "LABEL_BATCH_MAX",
             "LABEL_PDF_MAX_PAGES", "HSTS_MAX_AGE"}
_FLOAT_KEYS = {"SCRIPT_TIME_LIMIT"}
_BOOL_KEYS = {"SCHEDULER", "RATELIMIT_ENABLED", "SECURE_COOKIES"}


class SettingsError(ValueError):
    """A setting has a value the application cannot run with."""


def _coerce(key, raw):
    try:
        if key in _INT_KEYS:
            return int(raw)
        if key in _FLOAT_KEYS:
            return float(raw)
    except ValueError:
        raise SettingsError(f"BRAND_{key}={raw!r} is not a number") from None
    if key in _BOOL_KEYS:
        return str(raw).lower() in ("1", "true", "yes", "on")
    return raw


def _local_secret_key():
    """Demo and test: a key kept under instance/ so that sessions survive a restart and
    every worker of one installation signs alike."""
    path = ROOT / "instance" / "secret_key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def load_settings(overrides=None, environ=None):
    """Return the checked settings: defaults, then ``BRAND_*`` variables, then overrides."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)

    for key in DEFAULTS:
        if f"BRAND_{key}" in environ:
            settings[key] = _coerce(key, environ[f"BRAND_{key}"])
    unknown = sorted(k for k in environ if k.startswith("BRAND_") and k[6:] not in DEFAULTS
                     and k not in TEST_HARNESS_VARIABLES)
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")

    settings.update(overrides or {})
    given = set(overrides or {}) | {k[6:] for k in environ if k.startswith("BRAND_")}

    if settings["MODE"] not in MODES:
        raise SettingsError(f"BRAND_MODE must be one of {', '.join(MODES)}")
    if not settings["SECRET_KEY"]:
        if settings["MODE"] == "production":
            raise SettingsError("BRAND_SECRET_KEY must be set in production")
        settings["SECRET_KEY"] = _local_secret_key()
    for key in ("BPMN_DIR", "FORMS_DIR"):
        if not Path(settings[key]).is_dir():
            raise SettingsError(f"BRAND_{key}={settings[key]} is not a directory")
    if settings["SECURE_COOKIES"] is None:
        settings["SECURE_COOKIES"] = settings["MODE"] == "production"
    if settings["MODE"] == "test" and "LOGIN_RATE_LIMIT" not in given:
        # The suite signs in hundreds of times; a test that checks the limit sets it.
        settings["LOGIN_RATE_LIMIT"] = ""
    if settings["LOGIN_RATE_LIMIT"]:
        try:
            parse_many(settings["LOGIN_RATE_LIMIT"])
        except ValueError:
            raise SettingsError("BRAND_LOGIN_RATE_LIMIT must read like '10 per minute;50 per "
                                f"hour', not {settings['LOGIN_RATE_LIMIT']!r}") from None
    if settings["PAGE_SIZE"] < 1:
        raise SettingsError("BRAND_PAGE_SIZE must be at least 1")
    return settings
