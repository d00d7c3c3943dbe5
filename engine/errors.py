"""The errors a caller can expect, each carrying the HTTP status it maps to.

Views never build error responses by hand: they raise one of these (or let a
service raise it) and the central handlers in ``web/errors.py`` render it as a
page or as ``{"error": {"code", "message", ...}}``.
"""


def N_(message):
    """Mark a message for the catalogue without translating it (the web layer translates)."""
    return message


class BrandError(Exception):
    """Base class: a condition the code knows about, with a status and a code."""

    status = 400
    code = "bad_request"

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self):
        body = {"code": self.code, "message": self.message}
        body.update(self.details)
        return body


class BadInput(BrandError):
    status = 400
    code = "bad_request"


class ValidationFailed(BrandError):
    """Input that parsed but broke a rule; ``fields`` maps field name to messages."""

    status = 422
    code = "validation_failed"

    def __init__(self, message, fields=None, **details):
        super().__init__(message, fields=fields or {}, **details)
        self.fields = fields or {}


class DeployRefused(BrandError):
    """A diagram that would not execute; ``problems`` lists element id, line, message."""

    status = 422
    code = "deploy_refused"

    def __init__(self, message, problems):
        super().__init__(message, problems=[p.to_dict() for p in problems])
        self.problems = problems


class NotAuthenticated(BrandError):
    status = 401
    code = "not_authenticated"


class Forbidden(BrandError):
    status = 403
    code = "forbidden"


class NotFound(BrandError):
    status = 404
    code = "not_found"


class Conflict(BrandError):
    """The step lost a race or the task is no longer open."""

    status = 409
    code = "conflict"


class EngineFailure(BrandError):
    """The workflow engine raised while running a step; names the process and task."""

    status = 422
    code = "engine_error"
