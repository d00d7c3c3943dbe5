"""Form definitions: loading, validation of HTML and JSON input, description, i18n, macro."""

import datetime
import importlib.util
import io
import json
from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract
from werkzeug.datastructures import MultiDict

from engine import forms as forms_module
from engine.errors import ValidationFailed
from engine.forms import (
    MESSAGES,
    FormDefinitionError,
    FormNotFound,
    FormRegistry,
    describe,
    format_yuan,
    load_form_file,
    load_html,
    load_json,
    parse_form,
)

ROOT = Path(__file__).resolve().parent.parent
FORMS_DIR = ROOT / "forms"
TEMPLATES_DIR = ROOT / "web" / "templates"


def _load_babel_forms():
    """web/babel_forms.py by path, so the test does not import the whole web package."""
    spec = importlib.util.spec_from_file_location("babel_forms_under_test",
                                                  ROOT / "web" / "babel_forms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


babel_forms = _load_babel_forms()

EXPECTED_FORMS = {
    "admission_apply": {
        "enterprise_name": "string", "kind": "choice", "products": "multichoice",
        "base_location": "string", "base_area_mu": "decimal",
        "registered_capital_fen": "money", "employees": "integer",
        "contact_name": "string", "contact_phone": "string", "innovation": "text",
        "channels": "text", "experience": "text", "finance": "text",
        "certifications": "text",
    },
    "admission_supplement": {
        "supplement_request": "text", "supplement_note": "text", "certifications": "text",
    },
    "admission_completeness": {
        "completeness_decision": "choice", "supplement_request": "text",
        "completeness_comment": "text",
    },
    "admission_quality_review": {"quality_ok": "boolean", "quality_comment": "text"},
    "admission_finance_review": {
        "finance_ok": "boolean", "capital_verified_fen": "money", "finance_comment": "text",
    },
    "admission_scoring": {
        "enterprise_name": "string", "innovation": "text", "score_innovation": "integer",
        "channels": "text", "score_channels": "integer", "experience": "text",
        "score_experience": "integer", "finance": "text", "score_finance": "integer",
    },
    "admission_leadership": {"leadership_decision": "choice", "leadership_comment": "text"},
    "admission_deposit_payment": {
        "paid_amount_fen": "money", "paid_on": "date", "payment_reference": "string",
    },
    "admission_deposit_confirm": {
        "paid_amount_fen": "money", "paid_on": "date", "payment_reference": "string",
        "deposit_received": "boolean", "deposit_comment": "text",
    },
    "overdue_escalation": {"escalation_note": "text"},
}

SAMPLE = {
    "name": "sample",
    "title": "示例表单",
    "fields": [
        {"name": "title", "type": "string", "label": "名称", "required": True,
         "max_length": 10},
        {"name": "note", "type": "text", "label": "说明", "max_length": 20, "help": "可选"},
        {"name": "score", "type": "integer", "label": "得分", "min": 0, "max": 25},
        {"name": "area_mu", "type": "decimal", "places": 2, "label": "面积（亩）", "min": 0},
        {"name": "capital_fen", "type": "money", "label": "资本（元）"},
        {"name": "day", "type": "date", "label": "日期"},
        {"name": "ok", "type": "boolean", "label": "通过"},
        {"name": "decision", "type": "choice", "label": "结论", "required": True,
         "choices": [{"value": "accept", "label": "接受"}, {"value": "reject", "label": "拒绝"}]},
        {"name": "products", "type": "multichoice", "label": "品类",
         "choices": [{"value": "tea", "label": "茶叶"}, {"value": "potato", "label": "洋芋"},
                     {"value": "macadamia", "label": "澳洲坚果"}]},
        {"name": "reasons", "type": "text", "label": "理由",
         "required_when": {"decision": "reject"}},
        {"name": "case_ref", "type": "string", "label": "案卷号", "readonly": True},
    ],
}


@pytest.fixture(scope="module")
def registry():
    return FormRegistry(FORMS_DIR)


@pytest.fixture()
def sample():
    return parse_form(json.loads(json.dumps(SAMPLE)), source="sample.json")


def _errors(call, *args, **kwargs):
    with pytest.raises(ValidationFailed) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 422
    return caught.value.fields


# --- definitions ------------------------------------------------------------------


def test_every_form_file_loads_and_admission_forms_have_their_fields(registry):
    assert set(registry.names()) == {path.stem for path in FORMS_DIR.glob("*.json")}
    assert set(EXPECTED_FORMS) <= set(registry.names())
    for name, fields in EXPECTED_FORMS.items():
        form = registry.get(name)
        assert form.title
        assert registry.field_names(name) == list(fields)
        assert {spec.name: spec.type for spec in form.fields} == fields
        for spec in form.fields:
            assert spec.label


def test_admission_choices_are_the_domain_ones(registry):
    apply_form = registry.get("admission_apply")
    kinds = apply_form.get_field("kind")
    assert kinds.choice_values() == [
        "planting_base", "cooperative", "producer", "processor", "retailer"]
    assert [c.label for c in kinds.choices] == ["种植基地", "农民合作社", "生产商", "加工企业",
                                                 "零售商"]
    assert apply_form.get_field("products").choice_values() == [
        "tea", "black_cardamom", "macadamia", "potato", "sugar_cane"]
    completeness = registry.get("admission_completeness")
    assert completeness.get_field("completeness_decision").choice_values() == [
        "complete", "supplement", "reject"]
    assert completeness.get_field("supplement_request").required_when == {
        "completeness_decision": "supplement"}
    assert registry.get("admission_leadership").get_field(
        "leadership_decision").choice_values() == ["approve", "reject"]
    scoring = registry.get("admission_scoring")
    for name in ("score_innovation", "score_channels", "score_experience", "score_finance"):
        spec = scoring.get_field(name)
        assert (spec.required, spec.min, spec.max) == (True, 0, 25)


def test_registry_lookup(registry):
    assert registry.exists("admission_apply")
    assert not registry.exists("nope")
    assert registry.field_names("nope") is None
    with pytest.raises(FormNotFound) as caught:
        registry.get("nope")
    assert isinstance(caught.value, KeyError)
    assert "nope" in str(caught.value)


def _write(directory, name, data):
    path = directory / ("%s.json" % name)
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def _with_field(**changes):
    data = json.loads(json.dumps(SAMPLE))
    data["name"] = "broken"
    field = dict(data["fields"][0])
    field.update(changes)
    data["fields"][0] = {key: value for key, value in field.items() if value is not None}
    return data


@pytest.mark.parametrize("data, field, words", [
    (_with_field(type="number"), "title", "type"),
    (_with_field(label=None), "title", "label"),
    (_with_field(label="  "), "title", "label"),
    (_with_field(maxlength=3), "title", "unknown key"),
    (_with_field(name="Title"), "Title", "identifier"),
    (_with_field(name="class"), "class", "identifier"),
    (_with_field(required="yes"), "title", "required"),
    (_with_field(readonly=True), "title", "both required and readonly"),
    (_with_field(max_length=0), "title", "max_length"),
    (_with_field(name="note"), "note", "duplicate"),
    (_with_field(type="money", max_length=None, min=1.5), "title", "min"),
    (_with_field(type="integer", max_length=None, min=5, max=1), "title", "greater"),
    (_with_field(type="decimal", max_length=None, places=11), "title", "places"),
    (_with_field(type="choice", max_length=None, choices=[]), "title", "choices"),
    (_with_field(type="choice", max_length=None,
                 choices=[{"value": "a", "label": "甲"}, {"value": "a", "label": "乙"}]),
     "title", "twice"),
    (_with_field(required=None, required_when={"missing": "x"}), "title", "missing"),
    (_with_field(required=None, required_when={"decision": "maybe"}), "title", "maybe"),
    (_with_field(required=None, required_when={"score": 3}), "title", "choice or boolean"),
    (_with_field(required=True, required_when={"decision": "reject"}), "title",
     "required_when"),
    (_with_field(type="date", max_length=None, not_after="tomorrow"), "title", "not_after"),
    (_with_field(max_length=None, not_after="today"), "title", "unknown key"),
])
def test_broken_definition_names_file_and_field(tmp_path, data, field, words):
    _write(tmp_path, "broken", data)
    with pytest.raises(FormDefinitionError) as caught:
        FormRegistry(tmp_path)
    message = str(caught.value)
    assert message.startswith("broken.json: field %r: " % field)
    assert words in message
    assert caught.value.field == field
    assert caught.value.source == "broken.json"


@pytest.mark.parametrize("text, words", [
    ('{"name": "broken", "title": "x", "fields": [', "cannot read"),
    ('{"name": "broken", "name": "broken", "title": "x", "fields": []}', "duplicate key"),
    (json.dumps({"name": "other", "title": "x", "fields": SAMPLE["fields"]}), "other"),
    (json.dumps({"name": "broken", "title": "x", "fields": []}), "fields"),
    (json.dumps({"name": "broken", "title": "x", "fields": SAMPLE["fields"], "x": 1}),
     "unknown key"),
    (json.dumps({"name": "broken", "fields": SAMPLE["fields"]}), "title"),
])
def test_broken_file_names_the_file(tmp_path, text, words):
    path = _write(tmp_path, "broken", text)
    with pytest.raises(FormDefinitionError) as caught:
        load_form_file(path)
    assert str(caught.value).startswith("broken.json: ")
    assert words in str(caught.value)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FormDefinitionError):
        FormRegistry(tmp_path / "absent")


def test_reload_picks_up_changes_and_keeps_old_forms_on_error(tmp_path):
    good = dict(SAMPLE, name="first")
    _write(tmp_path, "first", good)
    registry = FormRegistry(tmp_path)
    assert registry.names() == ["first"]
    _write(tmp_path, "second", dict(SAMPLE, name="second"))
    registry.reload()
    assert registry.names() == ["first", "second"]
    _write(tmp_path, "third", "{not json")
    with pytest.raises(FormDefinitionError):
        registry.reload()
    assert registry.names() == ["first", "second"]


# --- HTML input ---------------------------------------------------------------------


def test_html_loads_every_type(sample):
    formdata = MultiDict([
        ("csrf_token", "ignored"), ("submit", "提交"),
        ("title", "  茶园  "), ("note", "第一行\r\n第二行"), ("score", "25"),
        ("area_mu", "12.5"), ("capital_fen", "50000.5"), ("day", "2024-02-29"),
        ("ok", "true"), ("decision", "accept"),
        ("products", "potato"), ("products", "tea"), ("products", "tea"),
        ("case_ref", "forged"),
    ])
    result = load_html(sample, formdata)
    assert result == {
        "title": "茶园", "note": "第一行\n第二行", "score": 25, "area_mu": "12.50",
        "capital_fen": 5000050, "day": "2024-02-29", "ok": True, "decision": "accept",
        "products": ["tea", "potato"], "reasons": None,
    }
    assert json.loads(json.dumps(result)) == result


def test_html_blank_optional_fields_are_none(sample):
    result = load_html(sample, {"title": "x", "decision": "accept", "note": "   ",
                                "score": "", "products": []})
    assert result == {
        "title": "x", "note": None, "score": None, "area_mu": None, "capital_fen": None,
        "day": None, "ok": None, "decision": "accept", "products": [], "reasons": None,
    }


@pytest.mark.parametrize("text, fen", [
    ("50000", 5000000), ("50000.5", 5000050), ("50000.05", 5000005), ("0", 0),
    ("50,000.00", 5000000), ("¥12.3", 1230), ("５００００．５", 5000050), (" 7 ", 700),
])
def test_html_money_is_yuan_turned_into_fen(sample, text, fen):
    result = load_html(sample, {"title": "x", "decision": "accept", "capital_fen": text})
    assert result["capital_fen"] == fen
    assert isinstance(result["capital_fen"], int)


@pytest.mark.parametrize("text, message", [
    ("abc", MESSAGES["money_html"]),
    ("1.234", MESSAGES["money_html"]),
    ("1e5", MESSAGES["money_html"]),
    ("5,00", MESSAGES["money_html"]),
    ("-1", "不能小于 0.00 元"),
    ("-0.01", "不能小于 0.00 元"),
    ("99999999999999999999", "不能大于 %s 元" % format_yuan(forms_module.MONEY_MAX_FEN)),
])
def test_html_money_refuses_bad_amounts(sample, text, message):
    errors = _errors(load_html, sample, {"title": "x", "decision": "accept",
                                         "capital_fen": text})
    assert errors == {"capital_fen": [message]}


def test_money_minimum_from_definition(registry):
    form = registry.get("admission_deposit_payment")
    errors = _errors(load_html, form, {"paid_amount_fen": "0", "paid_on": "2024-01-02",
                                       "payment_reference": "TX1"})
    assert errors == {"paid_amount_fen": ["不能小于 0.01 元"]}


@pytest.mark.parametrize("field, text, message", [
    ("score", "26", "不能大于 25"),
    ("score", "-1", "不能小于 0"),
    ("score", "1.5", MESSAGES["not_integer"]),
    ("score", "x" * 50, MESSAGES["not_integer"]),
    ("area_mu", "12.555", "最多保留 2 位小数"),
    ("area_mu", "-1", "不能小于 0"),
    ("area_mu", "NaN", MESSAGES["not_number"]),
    ("day", "2023-02-29", MESSAGES["not_date"]),
    ("day", "2024/01/01", MESSAGES["not_date"]),
    ("day", "20240101", MESSAGES["not_date"]),
    ("ok", "maybe", MESSAGES["not_boolean"]),
    ("decision", "later", MESSAGES["not_choice"]),
    ("products", "coffee", MESSAGES["not_choice"]),
    ("title", "长" * 11, "不能超过 10 个字符"),
    ("title", "a\x00b", MESSAGES["bad_characters"]),
])
def test_html_field_errors(sample, field, text, message):
    formdata = {"title": "x", "decision": "accept"}
    formdata[field] = text
    errors = _errors(load_html, sample, formdata)
    assert errors == {field: [message]}


def test_html_integer_accepts_full_width_digits(sample):
    result = load_html(sample, {"title": "x", "decision": "accept", "score": "２０"})
    assert result["score"] == 20


def test_html_boolean_words(sample):
    for text, value in (("true", True), ("false", False), ("on", True), ("0", False)):
        assert load_html(sample, {"title": "x", "decision": "accept", "ok": text})["ok"] \
            is value


def test_html_required_fields(sample):
    errors = _errors(load_html, sample, MultiDict([("title", "   ")]))
    assert errors == {"title": ["此项为必填项"], "decision": ["此项为必填项"]}


def test_html_plain_mapping_multichoice(sample):
    result = load_html(sample, {"title": "x", "decision": "accept",
                                "products": ["macadamia", "tea"]})
    assert result["products"] == ["tea", "macadamia"]
    single = load_html(sample, {"title": "x", "decision": "accept", "products": "tea"})
    assert single["products"] == ["tea"]


# --- required_when --------------------------------------------------------------------


def test_required_when(sample):
    errors = _errors(load_html, sample, {"title": "x", "decision": "reject"})
    assert errors == {"reasons": ["此项为必填项"]}
    result = load_html(sample, {"title": "x", "decision": "reject", "reasons": "假冒"})
    assert result["reasons"] == "假冒"
    assert load_json(sample, {"title": "x", "decision": "accept"})["reasons"] is None


def test_required_when_does_not_pile_onto_a_field_error(sample):
    errors = _errors(load_json, sample, {"title": "x", "decision": "reject", "reasons": 5})
    assert errors == {"reasons": [MESSAGES["not_text"]]}


def test_required_when_reports_together_with_other_errors(sample):
    errors = _errors(load_json, sample, {"title": "", "decision": "reject"})
    assert errors == {"title": ["此项为必填项"], "reasons": ["此项为必填项"]}


def test_admission_completeness_required_when(registry):
    form = registry.get("admission_completeness")
    assert load_html(form, {"completeness_decision": "complete"}) == {
        "completeness_decision": "complete", "supplement_request": None,
        "completeness_comment": None}
    assert _errors(load_html, form, {"completeness_decision": "supplement"}) == {
        "supplement_request": ["此项为必填项"]}
    assert _errors(load_json, form, {"completeness_decision": "reject",
                                     "supplement_request": "补营业执照"}) == {
        "completeness_comment": ["此项为必填项"]}


def test_required_when_on_a_boolean(tmp_path):
    data = {"name": "flag", "title": "x", "fields": [
        {"name": "ok", "type": "boolean", "label": "通过", "required": True},
        {"name": "why", "type": "text", "label": "原因", "required_when": {"ok": False}},
    ]}
    form = load_form_file(_write(tmp_path, "flag", data))
    assert load_json(form, {"ok": True}) == {"ok": True, "why": None}
    assert _errors(load_json, form, {"ok": False}) == {"why": ["此项为必填项"]}


# --- JSON input -------------------------------------------------------------------------


def test_json_loads_every_type(sample):
    body = {"title": " 茶园 ", "note": None, "score": 0, "area_mu": "3.1",
            "capital_fen": 5000050, "day": "2024-01-31", "ok": False, "decision": "reject",
            "products": ["tea"], "reasons": "不合格"}
    result = load_json(sample, body)
    assert result == {
        "title": "茶园", "note": None, "score": 0, "area_mu": "3.10", "capital_fen": 5000050,
        "day": "2024-01-31", "ok": False, "decision": "reject", "products": ["tea"],
        "reasons": "不合格",
    }
    assert json.loads(json.dumps(result)) == result
    assert load_json(sample, {"title": "x", "decision": "accept", "area_mu": 12})[
        "area_mu"] == "12.00"


@pytest.mark.parametrize("field, value, message", [
    ("capital_fen", 1.5, MESSAGES["money_json"]),
    ("capital_fen", 100.0, MESSAGES["money_json"]),
    ("capital_fen", "100", MESSAGES["money_json"]),
    ("capital_fen", True, MESSAGES["money_json"]),
    ("capital_fen", -1, "不能小于 0.00 元"),
    ("score", 3.0, MESSAGES["not_integer"]),
    ("score", "3", MESSAGES["not_integer"]),
    ("score", True, MESSAGES["not_integer"]),
    ("area_mu", 1.5, MESSAGES["not_number"]),
    ("day", 20240101, MESSAGES["not_date"]),
    ("day", "2024-13-01", MESSAGES["not_date"]),
    ("ok", "true", MESSAGES["not_boolean"]),
    ("ok", 1, MESSAGES["not_boolean"]),
    ("title", 5, MESSAGES["not_text"]),
    ("decision", ["accept"], MESSAGES["not_choice"]),
    ("products", "tea", MESSAGES["not_list"]),
    ("products", ["tea", "coffee"], MESSAGES["not_choice"]),
    ("products", [1], MESSAGES["not_choice"]),
])
def test_json_type_errors(sample, field, value, message):
    body = {"title": "x", "decision": "accept", field: value}
    assert _errors(load_json, sample, body) == {field: [message]}


def test_json_unknown_and_readonly_fields_are_refused(sample):
    errors = _errors(load_json, sample, {"title": "x", "decision": "accept", "hack": 1,
                                         "case_ref": "A-1"})
    assert errors == {"hack": [MESSAGES["unknown_field"]],
                      "case_ref": [MESSAGES["readonly_field"]]}


def test_json_body_must_be_an_object(sample):
    with pytest.raises(ValidationFailed) as caught:
        load_json(sample, ["title"])
    assert caught.value.message == MESSAGES["not_object"]
    assert caught.value.fields == {}


def test_validation_failed_shape(sample):
    with pytest.raises(ValidationFailed) as caught:
        load_json(sample, {})
    body = caught.value.to_dict()
    assert body["code"] == "validation_failed"
    assert body["message"] == MESSAGES["summary"]
    assert body["fields"] == {"title": ["此项为必填项"], "decision": ["此项为必填项"]}


def test_schema_class_is_cached_per_form_and_mode(sample):
    load_json(sample, {"title": "x", "decision": "accept"})
    load_html(sample, {"title": "x", "decision": "accept"})
    first = dict(sample._schemas)
    load_json(sample, {"title": "y", "decision": "accept"})
    assert set(first) == {"json", "html"}
    assert sample._schemas["json"] is first["json"]
    assert first["json"] is not first["html"]


def test_apply_form_round_trip(registry):
    form = registry.get("admission_apply")
    body = {"enterprise_name": "盈江茶业", "kind": "producer", "products": ["tea"],
            "registered_capital_fen": 100000000, "employees": 12, "contact_name": "张三",
            "contact_phone": "0692-1234567", "innovation": "甲", "channels": "乙",
            "experience": "丙", "finance": "丁"}
    result = load_json(form, body)
    assert result["registered_capital_fen"] == 100000000
    assert result["base_area_mu"] is None and result["certifications"] is None
    assert set(result) == set(EXPECTED_FORMS["admission_apply"])


# --- translation ----------------------------------------------------------------------------


def test_messages_go_through_translate_with_the_bare_msgid(sample):
    seen = []
    catalogue = {MESSAGES["required"]: "This field is required.",
                 MESSAGES["too_long"]: "At most %(max)d characters.",
                 MESSAGES["summary"]: "Please correct the marked fields."}

    def translate(msgid):
        seen.append(msgid)
        return catalogue.get(msgid, msgid)

    with pytest.raises(ValidationFailed) as caught:
        load_html(sample, {"title": "x" * 11}, translate=translate)
    assert caught.value.message == "Please correct the marked fields."
    assert caught.value.fields == {"title": ["At most 10 characters."],
                                   "decision": ["This field is required."]}
    assert set(seen) <= set(MESSAGES.values())
    assert _errors(load_html, sample, {"title": "x"}) == {"decision": ["此项为必填项"]}


# --- describe -------------------------------------------------------------------------------


def test_describe(sample):
    described = describe(sample)
    assert described["name"] == "sample"
    assert described["title"] == "示例表单"
    fields = {item["name"]: item for item in described["fields"]}
    assert list(fields) == [spec["name"] for spec in SAMPLE["fields"]]
    keys = {"name", "type", "label", "required", "readonly", "required_when", "choices", "min",
            "max", "max_length", "places", "not_after", "help"}
    assert all(set(item) == keys for item in described["fields"])
    assert fields["title"] == {
        "name": "title", "type": "string", "label": "名称", "required": True,
        "readonly": False, "required_when": None, "choices": [], "min": None, "max": None,
        "max_length": 10, "places": None, "not_after": None, "help": None}
    assert fields["decision"]["choices"] == [{"value": "accept", "label": "接受"},
                                             {"value": "reject", "label": "拒绝"}]
    assert (fields["score"]["min"], fields["score"]["max"]) == (0, 25)
    assert fields["area_mu"]["min"] == "0" and fields["area_mu"]["places"] == 2
    assert fields["capital_fen"]["min"] == 0
    assert fields["capital_fen"]["max"] == forms_module.MONEY_MAX_FEN
    assert fields["note"]["help"] == "可选"
    assert fields["reasons"]["required_when"] == {"decision": "reject"}
    assert fields["case_ref"]["readonly"] is True
    assert json.loads(json.dumps(described)) == described


def test_describe_translates_texts(sample):
    described = describe(sample, translate=lambda s: "<%s>" % s)
    assert described["title"] == "<示例表单>"
    assert described["fields"][0]["label"] == "<名称>"
    assert described["fields"][7]["choices"][0] == {"value": "accept", "label": "<接受>"}
    assert described["fields"][1]["help"] == "<可选>"


def test_describe_every_real_form(registry):
    for name in registry.names():
        described = describe(registry.get(name))
        assert [item["name"] for item in described["fields"]] == registry.field_names(name)


# --- Babel extraction ----------------------------------------------------------------------


def test_babel_extractor_yields_form_texts():
    path = FORMS_DIR / "admission_apply.json"
    fileobj = io.BytesIO(path.read_bytes())
    results = list(extract(babel_forms.extract_forms, fileobj))
    messages = [message for _line, message, _comments, _context in results]
    for expected in ("准入申请", "企业名称", "企业类型", "种植基地", "澳洲坚果", "注册资本（元）",
                     "开发创新能力说明"):
        assert expected in messages
    assert "producer" not in messages and "enterprise_name" not in messages
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, message, comments, _context in results:
        assert json.dumps(message, ensure_ascii=False) in lines[lineno - 1]
        assert comments and comments[0].startswith("form admission_apply")


def test_babel_extractor_covers_every_form():
    for path in sorted(FORMS_DIR.glob("*.json")):
        found = list(babel_forms.extract_forms(io.BytesIO(path.read_bytes()), ["_"], [], {}))
        form = load_form_file(path)
        messages = {message for _line, _func, message, _comments in found}
        assert form.title in messages
        assert {spec.label for spec in form.fields} <= messages


def test_babel_extractor_refuses_broken_json():
    with pytest.raises(FormDefinitionError):
        list(babel_forms.extract_forms(io.BytesIO(b"{oops"), ["_"], [], {}))


# --- the macro --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def render():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)))
    # As Flask-Babel's newstyle gettext: placeholders are filled from keyword arguments.
    env.globals["_"] = lambda s, **params: s % params if params else s
    env.globals["csrf_token"] = lambda: '<input type="hidden" name="csrf_token" value="t">'
    page = env.from_string(
        '{% from "macros/form.html" import render_form %}'
        "<form>{{ csrf_token() }}{{ render_form(form, values, errors, case=case) }}</form>")

    def render_page(form, values=None, errors=None, case=None):
        return page.render(form=form, values=values, errors=errors, case=case)

    return render_page


def test_macro_renders_every_field(render, sample):
    html = render(describe(sample), {"title": "茶园", "capital_fen": 5000050, "ok": True,
                                     "decision": "reject", "products": ["tea"],
                                     "day": "2024-01-02", "area_mu": "1.50",
                                     "case_ref": "A-7"})
    assert 'name="csrf_token"' in html
    assert 'name="title" value="茶园"' in html
    assert 'name="capital_fen" value="50000.50"' in html
    assert 'type="date" id="field-day" name="day" value="2024-01-02"' in html
    assert 'value="true" checked' in html
    assert '<option value="reject" selected>拒绝</option>' in html
    assert 'value="tea" checked' in html and 'value="potato" checked' not in html
    assert '<textarea id="field-note"' in html
    assert "A-7" in html and 'name="case_ref"' not in html
    assert html.count('class="form-field ') == len(SAMPLE["fields"])
    assert '<span class="field-required" aria-hidden="true">*</span>' in html


def test_macro_shows_errors_and_help(render, sample):
    html = render(sample, {}, {"title": ["此项为必填项"], "note": ["不能超过 20 个字符"]})
    assert '<p class="field-error" id="field-title-error-1">此项为必填项</p>' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="field-note-help field-note-error-1"' in html
    assert '<p class="field-help" id="field-note-help">可选</p>' in html


def test_macro_escapes_values_and_messages(render, sample):
    evil = "<script>alert(1)</script>"
    html = render(describe(sample), {"title": evil, "note": evil, "case_ref": evil},
                  {"title": [evil]})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_macro_rerenders_submitted_formdata(render, sample):
    submitted = MultiDict([("title", "x"), ("capital_fen", "abc"), ("products", "tea"),
                           ("products", "potato"), ("ok", "false")])
    html = render(describe(sample), submitted, {"capital_fen": [MESSAGES["money_html"]]},
                  case={"case_ref": "A-9"})
    assert 'name="capital_fen" value="abc"' in html
    assert 'value="tea" checked' in html and 'value="potato" checked' in html
    assert 'id="field-ok-false" value="false" checked' in html
    assert "A-9" in html


def test_macro_readonly_values_are_formatted(render, registry):
    form = describe(registry.get("admission_deposit_confirm"))
    html = render(form, {}, None, case={"paid_amount_fen": 1234567, "paid_on": "2024-03-01",
                                        "payment_reference": "TX-1"})
    assert "12345.67" in html and "2024-03-01" in html and "TX-1" in html
    html = render(describe(registry.get("admission_scoring")), {},
                  case={"innovation": "一\n<二>"})
    assert "一<br>&lt;二&gt;" in html


def test_macro_renders_every_real_form(render, registry):
    for name in registry.names():
        html = render(describe(registry.get(name)))
        for field_name in registry.field_names(name):
            assert 'data-field="%s"' % field_name in html


# --- dates not after today -------------------------------------------------------------------


@pytest.fixture()
def payment_form():
    return parse_form({"name": "payment", "title": "缴款", "fields": [
        {"name": "paid_on", "type": "date", "label": "缴纳日期", "required": True,
         "not_after": "today"}]})


@pytest.fixture()
def beijing_today(monkeypatch):
    """Beijing's date pinned to 1 March 2026."""
    day = datetime.date(2026, 3, 1)
    monkeypatch.setattr(forms_module.clock, "today", lambda: day)
    return day


@pytest.mark.parametrize("loader", [load_json, load_html])
def test_a_date_after_today_is_refused_on_its_field(payment_form, beijing_today, loader):
    assert _errors(loader, payment_form, {"paid_on": "2026-03-02"}) == {
        "paid_on": ["日期不能晚于今天（2026-03-01）"]}
    assert _errors(loader, payment_form, {"paid_on": "2099-01-01"}) == {
        "paid_on": ["日期不能晚于今天（2026-03-01）"]}
    assert loader(payment_form, {"paid_on": "2026-03-01"}) == {"paid_on": "2026-03-01"}
    assert loader(payment_form, {"paid_on": "2025-12-31"}) == {"paid_on": "2025-12-31"}


def test_payment_and_purchase_dates_are_not_after_today(registry):
    bounded = {(name, spec.name) for name in registry.names()
               for spec in registry.get(name).fields if spec.not_after == "today"}
    assert bounded == {
        ("admission_deposit_payment", "paid_on"), ("complaint_file", "purchased_on"),
        ("deposit_settle", "settled_on"), ("deposit_top_up", "top_up_paid_on"),
        ("royalty_pay", "paid_on")}
    fields = {f["name"]: f for f in describe(registry.get("royalty_pay"))["fields"]}
    assert fields["paid_on"]["not_after"] == "today"
