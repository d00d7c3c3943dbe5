"""Input limits the application applies before any view runs.

- JSON bodies nested too deeply to parse are malformed JSON (400), not a crash: Python's
  parser raises RecursionError, which Flask does not treat as a decoding error.
- A body sent without a length (chunked) is measured before any view reads it: werkzeug
  would hand a view the first ``MAX_CONTENT_LENGTH`` bytes and drop the rest silently,
  which turns a too-large upload into a confusing "malformed" error instead of a 413.
- ``<int:...>`` URL parts are bounded to the database's integer range, so that an id too
  large for a column is a 404 like any id that does not exist.
"""

import io

from flask import request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

# PostgreSQL ``integer``: the widest id or count any column holds.
DB_INT_MAX = 2**31 - 1


class SafeJSONProvider(DefaultJSONProvider):
    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` that matches only values a database integer column can hold."""

    def __init__(self, map, fixed_digits=0, min=None, max=DB_INT_MAX, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def measure_unsized_body():
    """Refuse a body without a declared length that is larger than the limit (413); a
    smaller one is buffered, so that views read it as if its length had been sent."""
    limit = request.max_content_length
    environ = request.environ
    if limit is None or request.content_length is not None:
        return
    if not environ.get("wsgi.input_terminated"):
        return      # werkzeug reads nothing of such a body: it cannot be too large
    body = environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def register(app):
    """Call before any blueprint is registered: rules bind their converters when added,
    and the body is measured before any other hook reads it."""
    app.json = SafeJSONProvider(app)
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(measure_unsized_body)
