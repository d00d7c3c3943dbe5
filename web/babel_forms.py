"""Babel extractor for task form definitions, so their texts become gettext msgids.

babel.cfg::

    [extractors]
    forms = web.babel_forms:extract_forms

    [forms: forms/**.json]

The web layer translates these texts at request time with
``engine.forms.describe(form, translate=flask_babel.gettext)``.
"""

import json
import logging

from engine.forms import FormDefinitionError, parse_form

logger = logging.getLogger(__name__)


def form_messages(form):
    """Yield ``(msgid, comment)`` for every translatable text of a ``FormDef``.

    The texts are the title, the form's help, and each field's label, help and choice
    labels, in definition order.  Field names and choice values are never translated.
    """
    yield form.title, "form %s: title" % form.name
    if form.help:
        yield form.help, "form %s: help" % form.name
    for spec in form.fields:
        where = "form %s, field %s" % (form.name, spec.name)
        yield spec.label, where + ": label"
        if spec.help:
            yield spec.help, where + ": help"
        for choice in spec.choices:
            yield choice.label, "%s: choice %s" % (where, choice.value)


def _line_of(text, message, start):
    """The 1-based line where *message* appears as a JSON string, searching from *start*."""
    for encoded in (json.dumps(message, ensure_ascii=False), json.dumps(message)):
        position = text.find(encoded, start)
        if position < 0:
            position = text.find(encoded)
        if position >= 0:
            return text.count("\n", 0, position) + 1, position + len(encoded)
    return 1, start


def extract_forms(fileobj, keywords, comment_tags, options):
    """Babel extraction method: yield ``(lineno, funcname, message, comments)`` per text.

    Reads one form definition (bytes, UTF-8 unless ``options["encoding"]`` says otherwise)
    and yields the messages of ``form_messages``, each with a comment naming the form
    and field.  A definition that does not parse or check raises
    ``FormDefinitionError``, so a broken form fails extraction loudly.
    """
    source = getattr(fileobj, "name", "<form>")
    text = fileobj.read().decode(options.get("encoding", "utf-8"))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FormDefinitionError(str(source), "not valid JSON: %s" % exc) from exc
    form = parse_form(data, source=str(source))
    cursor = 0
    count = 0
    for message, comment in form_messages(form):
        lineno, cursor = _line_of(text, message, cursor)
        count += 1
        yield lineno, None, message, [comment]
    logger.debug("extracted %d messages from form %s", count, form.name)
