"""Security headers on every response, and how the session cookies are sent.

The Content-Security-Policy allows scripts from this site only: every page's script is a
file under ``web/static`` (the vendored bpmn-js, dmn-js and ECharts bundles included), and
data for a script travels in ``<script type="application/json">`` blocks, which browsers
never run. Styles may be inline because the vendored libraries set them at run time
(dmn-js' text editor adds ``<style>`` elements); a style cannot run code. Images and fonts
may be ``data:`` URLs (the libraries' icons), and ``blob:`` images (a downloaded diagram).
No page may be framed by another site (``frame-ancestors``, and X-Frame-Options for older
browsers).

HSTS is sent in production only, when ``HSTS_MAX_AGE`` is above 0: the site must then be
served over HTTPS (browsers ignore the header over plain HTTP).
"""

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Label codes are in the verify page's URL: no other site learns them from a link.
    "Referrer-Policy": "same-origin",
    # The verify page asks for the phone's position; nothing here uses camera or microphone.
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=(), payment=()",
}


def register(app):
    """Cookie flags from the settings, and the headers on every response."""
    secure = app.config["SECURE_COOKIES"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
    )

    headers = dict(SECURITY_HEADERS)
    if app.config["MODE"] == "production" and app.config["HSTS_MAX_AGE"] > 0:
        headers["Strict-Transport-Security"] = (
            f"max-age={app.config['HSTS_MAX_AGE']}; includeSubDomains")

    @app.after_request
    def add_security_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
