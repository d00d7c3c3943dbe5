"""Task forms: JSON definitions in ``forms/`` turned into validated, typed task data.

Every BPMN user task names a form, ``forms/<name>.json``.  A ``FormRegistry`` loads
and checks all of them when the application starts, so a broken definition stops the
start-up with an error that names the file and the field.  ``load_html`` (a submitted
HTML form) and ``load_json`` (an API body) validate input with a marshmallow schema
generated from the definition and return values ready for the workflow's task data;
``describe`` gives API clients everything they need to fill a form.

Stored values are JSON-native, so they survive SpiffWorkflow's serializer unchanged:

==============  ==========================  =====================  ===================
type            HTML input                  JSON input             stored as
==============  ==========================  =====================  ===================
string, text    text                        string                 str
integer         "42"                        42                     int
decimal         "12.5"                      "12.5" or 12           "12.50" (str, exact)
money           yuan: "50000" / "50000.5"   integer fen: 5000050   int fen
date            "2024-05-01"                "2024-05-01"           "2024-05-01"
boolean         "true" / "false"            true / false           bool
choice          one choice value            one choice value       str
multichoice     several values (getlist)    list of values         list[str]
==============  ==========================  =====================  ===================

Options beyond ``name``, ``type``, ``label``, ``required``, ``readonly``, ``help`` and
``required_when``: ``max_length`` (string, text), ``min``/``max`` (integer, decimal,
money in fen), ``places`` (decimal), ``choices`` (choice, multichoice), and for a date
``"not_after": "today"``: a date after today's Beijing date (``engine.clock.today``, the
virtual clock in demo and test modes) is refused with a field error. Use it on dates that
record something that already happened (a payment, a transfer, a purchase).

Every editable field is present in the result; a blank optional field is ``None`` (an
empty list for multichoice).  ``readonly`` fields are shown from the case and never
accepted: HTML ignores them, JSON rejects them.

Translation.  This module must not import Flask.  Every user-visible message here is a
gettext msgid in Chinese, marked with the module's ``_`` (a no-op marker that Babel's
Python extractor picks up).  Translation happens at request time through the
``translate`` argument of ``load_html``, ``load_json`` and ``describe``: a callable
taking a msgid and returning its translation.  The web layer passes
``flask_babel.gettext``; messages with parameters (``%(max)d``) are translated first and
formatted here, so ``translate`` is always called with the bare msgid.  Without it the
Chinese msgids are used as they are.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import keyword
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, validates_schema
from marshmallow import fields as ma_fields

from engine import clock
from engine.errors import ValidationFailed

logger = logging.getLogger(__name__)

Translate = Callable[[str], str]


def _(message: str) -> str:
    """Mark *message* as a gettext msgid; it is translated later by a ``translate`` hook."""
    return message


def _identity(message: str) -> str:
    return message


MESSAGES = {
    "required": _("此项为必填项"),
    "null": _("此项为必填项"),
    "validator_failed": _("输入无效"),
    "not_text": _("请输入文字"),
    "bad_characters": _("包含不允许的控制字符"),
    "too_long": _("不能超过 %(max)d 个字符"),
    "not_integer": _("请输入整数"),
    "not_number": _("请输入数字，如 12.50"),
    "too_many_places": _("最多保留 %(places)d 位小数"),
    "below_min": _("不能小于 %(min)s"),
    "above_max": _("不能大于 %(max)s"),
    "money_html": _("请输入金额（元），最多两位小数，如 50000.00"),
    "money_json": _("金额须为以分为单位的整数"),
    "money_below_min": _("不能小于 %(min)s 元"),
    "money_above_max": _("不能大于 %(max)s 元"),
    "not_date": _("请输入有效日期，格式为 YYYY-MM-DD"),
    "after_today": _("日期不能晚于今天（%(today)s）"),
    "not_boolean": _("请选择“是”或“否”"),
    "not_choice": _("请从列表中选择"),
    "not_list": _("请提交选项列表"),
    "unknown_field": _("未知字段"),
    "readonly_field": _("只读字段，不能提交"),
    "not_object": _("提交的数据须为 JSON 对象"),
    "summary": _("提交的内容有误，请检查标出的字段"),
}

TYPES = (
    "string", "text", "integer", "decimal", "money", "date", "boolean", "choice",
    "multichoice",
)
_COMMON_KEYS = frozenset({"name", "type", "label", "required", "readonly", "help",
                          "required_when"})
_TYPE_KEYS = {
    "string": frozenset({"max_length"}),
    "text": frozenset({"max_length"}),
    "integer": frozenset({"min", "max"}),
    "decimal": frozenset({"min", "max", "places"}),
    "money": frozenset({"min", "max"}),
    "date": frozenset({"not_after"}),
    "boolean": frozenset(),
    "choice": frozenset({"choices"}),
    "multichoice": frozenset({"choices"}),
}
_FORM_KEYS = frozenset({"name", "title", "help", "fields"})

DEFAULT_MAX_LENGTH = {"string": 200, "text": 5000}
# The values a date's ``not_after`` takes: a date after the named day is refused.
DATE_LIMITS = ("today",)
DEFAULT_PLACES = 2
MAX_PLACES = 10
MONEY_MAX_FEN = 10 ** 15  # a sanity bound (10 trillion yuan), not a business rule

_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?[0-9]{1,30}(?:\.[0-9]{1,30})?", re.ASCII)
_YUAN_RE = re.compile(
    r"(?P<sign>-)?[¥]?\s*(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,20})"
    r"(?:\.(?P<cents>[0-9]{1,2}))?",
    re.ASCII,
)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TRUE_WORDS = frozenset({"true", "on", "1", "y", "yes"})
_FALSE_WORDS = frozenset({"false", "off", "0", "n", "no"})
_DECIMAL_CONTEXT = Context(prec=80)

_translate_var: contextvars.ContextVar[Translate] = contextvars.ContextVar(
    "form_translate", default=_identity
)


def _message(key: str, **params: Any) -> str:
    """The message for *key*, translated by the active hook, then formatted."""
    text = _translate_var.get()(MESSAGES[key])
    return text % params if params else text


def format_yuan(fen: int) -> str:
    """Render an amount in integer fen as yuan with two places: 5000050 -> "50000.50"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return "%s%d.%02d" % (sign, whole, cents)


# ----------------------------------------------------------------------------------
# Definitions
# ----------------------------------------------------------------------------------


class FormDefinitionError(ValueError):
    """A form definition that cannot be used; names the file and, when known, the field."""

    def __init__(self, source: str, problem: str, field: str | None = None):
        self.source = source
        self.field = field
        self.problem = problem
        where = "%s: field %r: " % (source, field) if field else "%s: " % source
        super().__init__(where + problem)


class FormNotFound(KeyError):
    """No form with this name is loaded."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return "form not found: %s" % self.name


@dataclass(frozen=True)
class Choice:
    """One option of a choice or multichoice field: the stored value and its label msgid."""

    value: str
    label: str


@dataclass(frozen=True)
class FieldDef:
    """One field of a form, as checked by ``parse_form``.

    ``min``/``max`` are int for integer and money (fen), Decimal for decimal.
    ``max_length`` and ``places`` hold the effective values (defaults applied).
    ``required_when`` maps another field's name to the value (or list of values) that
    makes this field required; all entries must match. ``not_after`` ("today" or None)
    bounds a date field.
    """

    name: str
    type: str
    label: str
    required: bool = False
    readonly: bool = False
    help: str | None = None
    choices: tuple[Choice, ...] = ()
    min: Any = None
    max: Any = None
    max_length: int | None = None
    places: int | None = None
    required_when: Mapping[str, Any] | None = None
    not_after: str | None = None

    def choice_values(self) -> list[str]:
        """The allowed values, in definition order."""
        return [choice.value for choice in self.choices]


@dataclass(frozen=True)
class FormDef:
    """A checked form definition; ``fields`` keep the order of the file."""

    name: str
    title: str
    fields: tuple[FieldDef, ...]
    help: str | None = None
    source: str = "<memory>"
    _schemas: dict = dataclass_field(default_factory=dict, init=False, repr=False,
                                     compare=False)

    def get_field(self, name: str) -> FieldDef | None:
        """The field called *name*, or None."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def field_names(self) -> list[str]:
        """All field names, readonly ones included, in definition order."""
        return [spec.name for spec in self.fields]

    @property
    def editable_fields(self) -> list[FieldDef]:
        """The fields a submission may set (every field that is not readonly)."""
        return [spec for spec in self.fields if not spec.readonly]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(source: str, problem: str, field: str | None = None) -> FormDefinitionError:
    return FormDefinitionError(source, problem, field)


def _text_option(raw: dict, key: str, source: str, field: str | None,
                 required: bool) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, "%r must be a non-empty string" % key, field)
    return value


def _bool_option(raw: dict, key: str, source: str, field: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise _fail(source, "%r must be true or false" % key, field)
    return value


def _parse_choices(raw: dict, source: str, name: str) -> tuple[Choice, ...]:
    items = raw.get("choices")
    if not isinstance(items, list) or not items:
        raise _fail(source, "'choices' must be a non-empty list", name)
    choices = []
    seen = set()
    for position, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"value", "label"}:
            raise _fail(source, "choice #%d must be {\"value\", \"label\"}" % position, name)
        value, label = item["value"], item["label"]
        if not isinstance(value, str) or not value:
            raise _fail(source, "choice #%d: value must be a non-empty string" % position,
                        name)
        if not isinstance(label, str) or not label.strip():
            raise _fail(source, "choice %r: label must be a non-empty string" % value, name)
        if value in seen:
            raise _fail(source, "choice value %r appears twice" % value, name)
        seen.add(value)
        choices.append(Choice(value, label))
    return tuple(choices)


def _parse_bound(raw: dict, key: str, kind: str, source: str, name: str) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if kind in ("integer", "money"):
        if not _is_int(value):
            raise _fail(source, "%r must be an integer%s" % (
                key, " (fen)" if kind == "money" else ""), name)
        return value
    if _is_int(value):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        return Decimal(value)
    raise _fail(source, "%r must be an integer or a decimal string like \"0.5\"" % key, name)


def _parse_field(raw: Any, position: int, source: str) -> FieldDef:
    if not isinstance(raw, dict):
        raise _fail(source, "must be an object", "#%d" % position)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or keyword.iskeyword(name):
        raise _fail(source, "'name' must be a lower-case identifier such as 'kind' "
                    "(letters, digits, underscores)", name if isinstance(name, str)
                    else "#%d" % position)
    kind = raw.get("type")
    if kind not in TYPES:
        raise _fail(source, "'type' must be one of %s, not %r" % (", ".join(TYPES), kind),
                    name)
    unknown = set(raw) - _COMMON_KEYS - _TYPE_KEYS[kind]
    if unknown:
        raise _fail(source, "unknown key(s) for a %s field: %s" % (
            kind, ", ".join(sorted(unknown))), name)
    label = _text_option(raw, "label", source, name, required=True)
    help_text = _text_option(raw, "help", source, name, required=False)
    required = _bool_option(raw, "required", source, name)
    readonly = _bool_option(raw, "readonly", source, name)
    if required and readonly:
        raise _fail(source, "a field cannot be both required and readonly", name)
    if "required_when" in raw and (required or readonly):
        raise _fail(source, "'required_when' cannot be combined with required or "
                    "readonly", name)
    options: dict[str, Any] = {}
    if kind in ("string", "text"):
        max_length = raw.get("max_length", DEFAULT_MAX_LENGTH[kind])
        if not _is_int(max_length) or max_length < 1:
            raise _fail(source, "'max_length' must be a positive integer", name)
        options["max_length"] = max_length
    if kind in ("integer", "decimal", "money"):
        low = _parse_bound(raw, "min", kind, source, name)
        high = _parse_bound(raw, "max", kind, source, name)
        if kind == "money":
            low = 0 if low is None else low
            high = MONEY_MAX_FEN if high is None else high
        if low is not None and high is not None and low > high:
            raise _fail(source, "'min' is greater than 'max'", name)
        options["min"], options["max"] = low, high
    if kind == "decimal":
        places = raw.get("places", DEFAULT_PLACES)
        if not _is_int(places) or not 0 <= places <= MAX_PLACES:
            raise _fail(source, "'places' must be an integer from 0 to %d" % MAX_PLACES,
                        name)
        options["places"] = places
    if kind in ("choice", "multichoice"):
        options["choices"] = _parse_choices(raw, source, name)
    if "not_after" in raw:
        if raw["not_after"] not in DATE_LIMITS:
            raise _fail(source, "'not_after' must be one of %s" % ", ".join(
                repr(limit) for limit in DATE_LIMITS), name)
        options["not_after"] = raw["not_after"]
    return FieldDef(name=name, type=kind, label=label, required=required,
                    readonly=readonly, help=help_text,
                    required_when=raw.get("required_when"), **options)


def _check_required_when(spec: FieldDef, by_name: dict[str, FieldDef], source: str):
    conditions = spec.required_when
    if not isinstance(conditions, dict) or not conditions:
        raise _fail(source, "'required_when' must be an object such as "
                    "{\"decision\": \"reject\"}", spec.name)
    for other_name, expected in conditions.items():
        other = by_name.get(other_name)
        if other is None or other is spec:
            raise _fail(source, "'required_when' names %r, which is not another field of "
                        "this form" % other_name, spec.name)
        if other.readonly:
            raise _fail(source, "'required_when' cannot depend on readonly field %r"
                        % other_name, spec.name)
        if other.type == "boolean":
            if not isinstance(expected, bool):
                raise _fail(source, "'required_when' value for boolean %r must be true or "
                            "false" % other_name, spec.name)
        elif other.type == "choice":
            wanted = expected if isinstance(expected, list) else [expected]
            bad = [value for value in wanted if value not in other.choice_values()]
            if not wanted or bad:
                raise _fail(source, "'required_when' value %r is not a choice of %r"
                            % (expected, other_name), spec.name)
        else:
            raise _fail(source, "'required_when' can only depend on a choice or boolean "
                        "field; %r is %s" % (other_name, other.type), spec.name)


def parse_form(data: Any, source: str = "<memory>") -> FormDef:
    """Check a decoded form definition and return it as a ``FormDef``.

    Raises ``FormDefinitionError`` naming *source* and the offending field for any
    unknown key, bad type, duplicate name, impossible bound or dangling reference.
    """
    if not isinstance(data, dict):
        raise _fail(source, "a form definition must be a JSON object")
    unknown = set(data) - _FORM_KEYS
    if unknown:
        raise _fail(source, "unknown key(s): %s" % ", ".join(sorted(unknown)))
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise _fail(source, "'name' must be a lower-case identifier")
    title = _text_option(data, "title", source, None, required=True)
    help_text = _text_option(data, "help", source, None, required=False)
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise _fail(source, "'fields' must be a non-empty list")
    parsed: list[FieldDef] = []
    by_name: dict[str, FieldDef] = {}
    for position, raw in enumerate(raw_fields):
        spec = _parse_field(raw, position, source)
        if spec.name in by_name:
            raise _fail(source, "duplicate field name", spec.name)
        by_name[spec.name] = spec
        parsed.append(spec)
    for spec in parsed:
        if spec.required_when is not None:
            _check_required_when(spec, by_name, source)
    if not any(not spec.readonly for spec in parsed):
        raise _fail(source, "a form needs at least one field that is not readonly")
    return FormDef(name=name, title=title, fields=tuple(parsed), help=help_text,
                   source=source)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key %r" % key)
        result[key] = value
    return result


def load_form_file(path: str | Path) -> FormDef:
    """Read, decode and check one ``forms/<name>.json``; its name must match the file."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(source, "cannot read form definition: %s" % exc) from exc
    form = parse_form(data, source=source)
    if form.name != path.stem:
        raise _fail(source, "'name' is %r but the file is %s" % (form.name, path.name))
    return form


class FormRegistry:
    """All form definitions of one directory, loaded and checked up front."""

    def __init__(self, directory: str | Path):
        """Load every ``*.json`` in *directory*; raises ``FormDefinitionError`` if any is bad."""
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._forms: dict[str, FormDef] = self._load_all()

    def _load_all(self) -> dict[str, FormDef]:
        if not self.directory.is_dir():
            raise _fail(str(self.directory), "form directory does not exist")
        forms = {}
        for path in sorted(self.directory.glob("*.json")):
            form = load_form_file(path)
            forms[form.name] = form
        logger.info("loaded %d form definitions from %s", len(forms), self.directory)
        return forms

    def reload(self) -> None:
        """Load the directory again; on error the previous forms stay in use and it raises."""
        with self._lock:
            self._forms = self._load_all()

    def get(self, name: str) -> FormDef:
        """The form called *name*; raises ``FormNotFound`` (a KeyError) when there is none."""
        try:
            return self._forms[name]
        except KeyError:
            raise FormNotFound(name) from None

    def exists(self, name: str) -> bool:
        """Whether a form called *name* is loaded."""
        return name in self._forms

    def field_names(self, name: str) -> list[str] | None:
        """All field names of form *name* (readonly ones included), or None if it is missing."""
        form = self._forms.get(name)
        return None if form is None else form.field_names

    def names(self) -> list[str]:
        """The names of all loaded forms, sorted."""
        return sorted(self._forms)


# ----------------------------------------------------------------------------------
# Validation: marshmallow fields whose messages all go through the translate hook
# ----------------------------------------------------------------------------------


class _FormField(ma_fields.Field):
    """Base of generated fields; ``mode`` is "html" (strings) or "json" (typed values)."""

    def __init__(self, spec: FieldDef, mode: str):
        super().__init__(required=spec.required)
        self.spec = spec
        self.mode = mode

    def make_error(self, key: str, **kwargs: Any) -> ValidationError:
        return ValidationError(_message(key if key in MESSAGES else "validator_failed",
                                        **kwargs))

    def _numeric_text(self, value: Any) -> str | None:
        """HTML numbers: full-width digits and punctuation (Chinese IMEs) made ASCII."""
        if not isinstance(value, str):
            return None
        return unicodedata.normalize("NFKC", value).strip()

    def _check_range(self, value: Any) -> None:
        if self.spec.min is not None and value < self.spec.min:
            raise self.make_error("below_min", min=str(self.spec.min))
        if self.spec.max is not None and value > self.spec.max:
            raise self.make_error("above_max", max=str(self.spec.max))


# The widest integer a field takes when its form declares no bound (PostgreSQL ``integer``).
INTEGER_LIMIT = 2**31 - 1


class _TextField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("not_text")
        pattern = _CONTROL_RE if self.spec.type == "text" else _LINE_CONTROL_RE
        if pattern.search(value):
            raise self.make_error("bad_characters")
        if len(value) > self.spec.max_length:
            raise self.make_error("too_long", max=self.spec.max_length)
        return value


class _IntegerField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if self.mode == "html":
            text = self._numeric_text(value)
            if text is None or not _INTEGER_RE.fullmatch(text):
                raise self.make_error("not_integer")
            number = int(text)
        elif _is_int(value):
            number = value
        else:
            raise self.make_error("not_integer")
        self._check_range(number)
        # Without a declared bound, an integer still has to fit a database integer column:
        # an id or a count far beyond it is a typing mistake, not a crash.
        if self.spec.max is None and number > INTEGER_LIMIT:
            raise self.make_error("above_max", max=str(INTEGER_LIMIT))
        if self.spec.min is None and number < -INTEGER_LIMIT:
            raise self.make_error("below_min", min=str(-INTEGER_LIMIT))
        return number


class _DecimalField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if self.mode == "html":
            text = self._numeric_text(value)
        elif _is_int(value):
            text = str(value)
        elif isinstance(value, str):
            text = value.strip()
        else:
            text = None
        if text is None or not _DECIMAL_RE.fullmatch(text):
            raise self.make_error("not_number")
        number = Decimal(text)
        places = self.spec.places
        if -number.as_tuple().exponent > places:
            raise self.make_error("too_many_places", places=places)
        self._check_range(number)
        exact = number.quantize(Decimal(1).scaleb(-places), context=_DECIMAL_CONTEXT)
        if exact == 0:
            exact = abs(exact)
        return format(exact, "f")


class _MoneyField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if self.mode == "html":
            text = self._numeric_text(value)
            match = _YUAN_RE.fullmatch(text) if text is not None else None
            if match is None:
                raise self.make_error("money_html")
            whole = int(match["whole"].replace(",", ""))
            cents = int((match["cents"] or "0").ljust(2, "0"))
            fen = whole * 100 + cents
            if match["sign"]:
                fen = -fen
        elif _is_int(value):
            fen = value
        else:
            raise self.make_error("money_json")
        if fen < self.spec.min:
            raise self.make_error("money_below_min", min=format_yuan(self.spec.min))
        if fen > self.spec.max:
            raise self.make_error("money_above_max", max=format_yuan(self.spec.max))
        return fen


class _DateField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        text = self._numeric_text(value) if self.mode == "html" else value
        if not isinstance(text, str) or not _DATE_RE.fullmatch(text):
            raise self.make_error("not_date")
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise self.make_error("not_date") from None
        if self.spec.not_after == "today":
            today = clock.today()
            if day > today:
                raise self.make_error("after_today", today=today.isoformat())
        return day.isoformat()


class _BooleanField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if self.mode == "html" and isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        raise self.make_error("not_boolean")


class _ChoiceField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or value not in self.spec.choice_values():
            raise self.make_error("not_choice")
        return value


class _MultiChoiceField(_FormField):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise self.make_error("not_list")
        allowed = self.spec.choice_values()
        if any(not isinstance(item, str) or item not in allowed for item in value):
            raise self.make_error("not_choice")
        return [choice for choice in allowed if choice in value]


_FIELD_CLASSES = {
    "string": _TextField,
    "text": _TextField,
    "integer": _IntegerField,
    "decimal": _DecimalField,
    "money": _MoneyField,
    "date": _DateField,
    "boolean": _BooleanField,
    "choice": _ChoiceField,
    "multichoice": _MultiChoiceField,
}


def _condition_holds(conditions: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    for other_name, expected in conditions.items():
        wanted = expected if isinstance(expected, list) else [expected]
        actual = data.get(other_name)
        if not any(type(actual) is type(value) and actual == value for value in wanted):
            return False
    return True


class _FormSchema(Schema):
    """Base of generated schemas; ``form_def`` is set on each generated class."""

    form_def: FormDef

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _check_required_when(self, data, original_data, **kwargs):
        errors = {}
        for spec in self.form_def.editable_fields:
            if (spec.required_when and spec.name not in original_data
                    and _condition_holds(spec.required_when, data)):
                errors[spec.name] = [_message("required")]
        if errors:
            raise ValidationError(errors)


def _schema_class(form: FormDef, mode: str) -> type[Schema]:
    """The generated schema class for *form* in *mode*, built once and cached on the form."""
    cached = form._schemas.get(mode)
    if cached is None:
        declared = {spec.name: _FIELD_CLASSES[spec.type](spec, mode)
                    for spec in form.editable_fields}
        class_name = "%s%sSchema" % (
            "".join(part.title() for part in form.name.split("_")), mode.title())
        cached = _FormSchema.from_dict(declared, name=class_name)
        cached.form_def = form
        form._schemas[mode] = cached
    return cached


def _clean_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return value


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _run(form: FormDef, mode: str, raw: dict, early_errors: dict) -> dict:
    errors: dict[str, list] = {name: list(messages) for name, messages in early_errors.items()}
    loaded: dict = {}
    valid: dict = {}
    try:
        loaded = _schema_class(form, mode)().load(raw)
    except ValidationError as exc:
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        for name, messages in exc.normalized_messages().items():
            if isinstance(messages, dict):
                messages = [text for value in messages.values() for text in value]
            errors.setdefault(name, []).extend(messages)
    if errors:
        logger.debug("form %s (%s) rejected; fields: %s", form.name, mode, sorted(errors))
        failure = ValidationFailed(_message("summary"), fields=errors)
        # The fields that did pass, typed: a caller can run the service's own checks on
        # them too, so that a person sees every problem of one submission at once.
        failure.valid_data = {name: value for name, value in valid.items()
                              if name not in errors}
        raise failure
    return {spec.name: loaded.get(spec.name, [] if spec.type == "multichoice" else None)
            for spec in form.editable_fields}


def load_html(form: FormDef, formdata: Mapping[str, Any], *,
              translate: Translate | None = None) -> dict:
    """Validate a submitted HTML form and return typed task data for *form*.

    *formdata* is a werkzeug MultiDict (``request.form``) or a plain mapping of strings
    (a list for a multichoice).  Fields that are not editable parts of the form (the
    CSRF token, the submit button, readonly fields) are ignored.  Strings are trimmed
    and blank inputs count as missing.  The result has every editable field (see the
    module docstring for the stored types).  Raises ``ValidationFailed`` whose
    ``fields`` maps field names to messages translated by *translate*.
    """
    token = _translate_var.set(translate or _identity)
    try:
        getlist = getattr(formdata, "getlist", None)
        raw: dict[str, Any] = {}
        for spec in form.editable_fields:
            if spec.type == "multichoice":
                if getlist is not None:
                    values = list(getlist(spec.name))
                else:
                    value = formdata.get(spec.name)
                    values = list(value) if isinstance(value, (list, tuple)) else (
                        [] if value is None else [value])
                values = [_clean_text(str(item)) for item in values]
                values = [item for item in values if item]
                if values:
                    raw[spec.name] = values
                continue
            value = formdata.get(spec.name)
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if value is None:
                continue
            value = _clean_text(value if isinstance(value, str) else str(value))
            if value:
                raw[spec.name] = value
        return _run(form, "html", raw, {})
    finally:
        _translate_var.reset(token)


def load_json(form: FormDef, data: Any, *, translate: Translate | None = None) -> dict:
    """Validate a JSON API body and return typed task data for *form*.

    Values must have their JSON types: money is an integer of fen (a float or string is
    refused), a decimal is a string such as "12.50" or an integer, a date is
    "YYYY-MM-DD", a boolean is true/false, a multichoice is a list.  ``null`` and ""
    count as missing.  Unknown and readonly fields are refused with a field error.
    Returns every editable field; raises ``ValidationFailed`` like ``load_html``.
    """
    token = _translate_var.set(translate or _identity)
    try:
        if not isinstance(data, Mapping):
            raise ValidationFailed(_message("not_object"))
        early: dict[str, list] = {}
        raw: dict[str, Any] = {}
        for name, value in data.items():
            spec = form.get_field(name) if isinstance(name, str) else None
            if spec is None:
                early[str(name)] = [_message("unknown_field")]
            elif spec.readonly:
                early[name] = [_message("readonly_field")]
            else:
                if isinstance(value, list):
                    value = [_clean_text(item) for item in value]
                value = _clean_text(value)
                if not _is_blank(value):
                    raw[name] = value
        return _run(form, "json", raw, early)
    finally:
        _translate_var.reset(token)


def describe(form: FormDef, translate: Translate = _identity) -> dict:
    """A JSON-ready description of *form* for API clients, labels run through *translate*.

    Shape: ``{"name", "title", "help", "fields": [{"name", "type", "label", "required",
    "readonly", "required_when", "choices": [{"value", "label"}], "min", "max",
    "max_length", "places", "not_after", "help"}]}``.  Every key is always present (None or [] when
    it does not apply).  Money bounds are integer fen, decimal bounds are strings.
    """
    def bound(value: Any) -> Any:
        return format(value, "f") if isinstance(value, Decimal) else value

    return {
        "name": form.name,
        "title": translate(form.title),
        "help": translate(form.help) if form.help else None,
        "fields": [
            {
                "name": spec.name,
                "type": spec.type,
                "label": translate(spec.label),
                "required": spec.required,
                "readonly": spec.readonly,
                "required_when": dict(spec.required_when) if spec.required_when else None,
                "choices": [{"value": choice.value, "label": translate(choice.label)}
                            for choice in spec.choices],
                "min": bound(spec.min),
                "max": bound(spec.max),
                "max_length": spec.max_length,
                "places": spec.places,
                "not_after": spec.not_after,
                "help": translate(spec.help) if spec.help else None,
            }
            for spec in form.fields
        ],
    }
