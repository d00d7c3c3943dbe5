"""The working-day calendar: the State Council's arrangement as ``chinesecalendar`` knows it,
and, for a year it does not know yet, the holiday table that office staff keep."""

from datetime import date

import chinese_calendar
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import clock, workdays
from engine.errors import N_, ValidationFailed
from web.views_common import commit

bp = Blueprint("workcalendar", __name__)

BAD_DATE = N_("请输入有效日期，格式为 YYYY-MM-DD")


def _year():
    value = request.args.get("year", "")
    if value.isdecimal() and len(value) == 4 and 2000 <= int(value) <= 2100:
        return int(value)
    return clock.now().year


def _date(value, field="day"):
    try:
        return date.fromisoformat(str(value or ""))
    except ValueError:
        raise ValidationFailed("日期无效", fields={field: [BAD_DATE]}) from None


def _published(year):
    """(holidays on weekdays, weekend days worked) of a year the library knows."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    holidays = [d for d in chinese_calendar.get_holidays(start, end, include_weekends=False)]
    worked = [d for d in chinese_calendar.get_workdays(start, end, include_weekends=True)
              if d.weekday() >= 5]
    return holidays, worked


@bp.route("/calendar")
@login_required
def index():
    year = _year()
    official = workdays.has_official_data(year)
    published = _published(year) if official else ([], [])
    return render_template("calendar.html", year=year, official=official,
                           holidays=published[0], worked=published[1],
                           days=[] if official else workdays.list_calendar_days(year),
                           may_edit=bool(current_user.group_ids & workdays.CALENDAR_EDITORS),
                           errors={})


@bp.route("/calendar/days", methods=["POST"])
@login_required
def add_day():
    day = _date(request.form.get("day"))
    try:
        workdays.set_calendar_day(day, request.form.get("is_workday") == "true",
                                  request.form.get("name", ""), current_user)
        commit()
    except ValidationFailed as exc:
        year = day.year
        return render_template("calendar.html", year=year, official=False, holidays=[],
                               worked=[], days=workdays.list_calendar_days(year),
                               may_edit=True, errors=exc.fields), 422
    flash(_("已保存 %(day)s", day=day.isoformat()))
    return redirect(url_for("workcalendar.index", year=day.year))


@bp.route("/calendar/days/<day>/delete", methods=["POST"])
@login_required
def remove_day(day):
    when = _date(day)
    workdays.remove_calendar_day(when, current_user)
    commit()
    flash(_("已删除 %(day)s", day=when.isoformat()))
    return redirect(url_for("workcalendar.index", year=when.year))
