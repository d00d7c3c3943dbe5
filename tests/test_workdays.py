"""Working days: the published calendar, and the office's table for a year it lacks."""

import re
from datetime import date, datetime

import pytest
from sqlalchemy import select

from engine import workdays
from engine.errors import Forbidden, ValidationFailed
from engine.models import User
from web.extensions import db

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def shanghai_morning(day):
    """10:00 in Yingjiang (02:00 UTC) on ``day``, as naive UTC."""
    return datetime(day.year, day.month, day.day, 2, 0)


def end_of_day_utc(day):
    """23:59:59 Shanghai time on ``day``, as naive UTC."""
    return datetime(day.year, day.month, day.day, 15, 59, 59)


def user(username):
    return db.session.scalars(select(User).where(User.username == username)).one()


def test_national_day_and_its_working_saturday():
    # 2026: 1-7 October off; Saturday 10 October worked instead.
    end, exact = workdays.add_working_days(shanghai_morning(date(2026, 9, 28)), 7)
    # 29, 30 Sep; 8, 9, 10 (Sat) Oct; 12, 13 Oct.
    assert end == end_of_day_utc(date(2026, 10, 13))
    assert exact


def test_spring_festival_and_its_working_saturdays():
    # 2026: 15-23 February off; Saturdays 14 and 28 February worked.
    end, exact = workdays.add_working_days(shanghai_morning(date(2026, 2, 12)), 7)
    # 13, 14 (Sat) Feb; 24, 25, 26, 27, 28 (Sat) Feb.
    assert end == end_of_day_utc(date(2026, 2, 28))
    assert exact


def test_a_year_without_data_falls_back_to_weekends_and_is_provisional():
    assert not workdays.has_official_data(2027), "chinesecalendar now knows 2027: pick 2028"
    end, exact = workdays.add_working_days(shanghai_morning(date(2026, 12, 28)), 7)
    # 29, 30, 31 Dec; 1 (Fri), 4, 5, 6 Jan: nothing known about New Year's Day 2027.
    assert end == end_of_day_utc(date(2027, 1, 6))
    assert not exact
    assert workdays.is_provisional(end)
    assert not workdays.is_provisional(end_of_day_utc(date(2026, 12, 31)))


def test_the_office_table_fills_a_year_without_data(app):
    with app.app_context():
        office = user("office")
        workdays.set_calendar_day(date(2027, 1, 1), False, "元旦", office)
        workdays.set_calendar_day(date(2027, 1, 3), True, "元旦调休", office)
        db.session.commit()

        end, exact = workdays.add_working_days(shanghai_morning(date(2026, 12, 28)), 7)
        # 29, 30, 31 Dec; 1 Jan off; 3 (Sun) Jan worked; 4, 5, 6 Jan.
        assert end == end_of_day_utc(date(2027, 1, 6))
        assert not exact

        workdays.remove_calendar_day(date(2027, 1, 3), office)
        end, _exact = workdays.add_working_days(shanghai_morning(date(2026, 12, 28)), 7)
        assert end == end_of_day_utc(date(2027, 1, 7))


def test_only_the_office_edits_the_table_and_only_for_unknown_years(app):
    with app.app_context():
        with pytest.raises(Forbidden):
            workdays.set_calendar_day(date(2027, 1, 1), False, "元旦", user("market"))
        with pytest.raises(ValidationFailed) as known:
            workdays.set_calendar_day(date(2026, 10, 1), False, "国庆", user("office"))
        assert "day" in known.value.fields
        with pytest.raises(ValidationFailed) as pointless:
            workdays.set_calendar_day(date(2027, 1, 2), False, "周六", user("office"))
        assert "is_workday" in pointless.value.fields


def login(client, username):
    page = client.get("/login")
    response = client.post("/login", data={"username": username, "password": "demo",
                                           "csrf_token": CSRF.search(page.text).group(1)})
    assert response.status_code == 302


def test_office_keeps_the_table_on_the_calendar_page(client):
    login(client, "office")
    page = client.get("/calendar?year=2027")
    assert "尚未收录" in page.text and "暂定" in page.text
    token = CSRF.search(page.text).group(1)

    saved = client.post("/calendar/days", data={"day": "2027-02-08", "is_workday": "false",
                                                "name": "春节", "csrf_token": token})
    assert saved.status_code == 302
    assert "2027-02-08" in client.get("/calendar?year=2027").text

    known = client.get("/calendar?year=2026")
    assert "2026-10-01" in known.text and "2026-10-10" in known.text
    refused = client.post("/calendar/days", data={"day": "2026-10-01", "is_workday": "false",
                                                  "csrf_token": token})
    assert refused.status_code == 422
