"""What a person reads: labels instead of codes, yuan, Beijing time, headings that say what
the rows are, and every field error of a submission at once."""

import re
import subprocess
from pathlib import Path

from test_inbox import login

from web.demo import seed_demo
from web.demo_royalty import seed_royalty_demo
from web.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_seed_demo_lists_every_demo_login(app):
    with app.app_context():
        seed_royalty_demo()  # what demo mode seeds besides the test data
        db.session.commit()
        line = seed_demo()[0]
    users = line.split(": ", 1)[1].split(", ")
    assert "general" in users and "ent-c" in users
    assert users == ["market", "quality", "finance", "protection", "leadership", "office",
                     "service", "it", "general", "ent-a", "ent-b", "ent-c"]


def test_make_run_banner_names_general_and_ent_c():
    banner = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout
    echoed = " ".join(re.findall(r'echo "([^"]*)"', banner))
    for login_name in ("general", "ent-a", "ent-b", "ent-c", "it"):
        assert re.search(rf"\b{login_name}\b", echoed), (login_name, echoed)


def test_calendar_headings_say_what_the_rows_are(client):
    login(client, "office")
    page = client.get("/calendar?year=2026").text
    assert "放假（工作日）" not in page
    assert "<h2>放假日（不含周末）</h2>" in page
    assert "<h2>调休上班日（周末上班）</h2>" in page


def test_number_fields_show_their_range_from_the_form(app):
    from flask import render_template_string

    from engine.forms import describe
    from web.views_common import forms

    with app.test_request_context("/"):
        scoring = describe(forms().get("admission_scoring"))
        html = render_template_string(
            '{% from "macros/form.html" import render_form %}{{ render_form(form) }}',
            form=scoring)
        quota = render_template_string(
            '{% from "macros/form.html" import render_form %}{{ render_form(form) }}',
            form=describe(forms().get("licence_quota")))

    hint = '<p class="field-range" id="field-score_innovation-range">取值范围：0–25</p>'
    assert hint in html
    assert 'aria-describedby="field-score_innovation-range"' in html
    assert html.count("取值范围：0–25") == 4
    assert "不小于 1" in quota and "取值范围：0–10000" in quota
    assert 'id="field-max_quota-range"' not in quota  # readonly: no input, no hint
