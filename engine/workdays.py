"""Working-day arithmetic in Asia/Shanghai, from the maintained ``chinesecalendar`` data.

The State Council publishes each year's holidays late in the year before, and the
library learns them only in its next release. For a year it has no data for, the
office keeps its own table (``calendar_days``): the public holidays that fall on
weekdays and the weekend days worked instead (调休上班), entered by ``office`` staff
once the notice is out, or estimated before. Other days of such a year follow the
weekend. A deadline that counted any day of such a year is provisional, and the UI
says so: the official calendar may still move it.
"""

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import Boolean, Date, DateTime, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Forbidden, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

CALENDAR_EDITORS = frozenset({"office"})


class CalendarDay(Base):
    """A day that breaks the weekend rule in a year without published library data."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # False: a public holiday on a weekday; True: a weekend day worked (调休上班).
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(64), default="")
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


def has_official_data(year):
    """Whether ``chinesecalendar`` knows the State Council's arrangement for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _table(year):
    """{day: is_workday} from the office's table for ``year``; empty outside a session."""
    query = select(CalendarDay.day, CalendarDay.is_workday).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    try:
        rows = session().execute(query).all()
    except RuntimeError:
        # No database at hand (a script, a unit test of the arithmetic): weekends only.
        return {}
    return {row.day: row.is_workday for row in rows}


def is_workday(day, table=None):
    """(is a working day, known from published data) for a ``date``.

    ``table`` is the office's table for the day's year (see ``_table``); without it
    only weekends count as days off for a year the library does not know.
    """
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        pass
    if table is not None and day in table:
        return table[day], False
    return day.weekday() < 5, False


def add_working_days(start_utc, days):
    """The UTC instant ``days`` working days after ``start_utc`` (naive UTC), and whether exact.

    The deadline falls at the end of the last working day, 23:59:59 Shanghai time,
    which is how the office reads "within N working days". ``exact`` is False when a
    day of a year without library data was counted (see the module docstring).
    """
    local = start_utc.replace(tzinfo=UTC).astimezone(SHANGHAI)
    day = local.date()
    exact = True
    counted = 0
    tables = {}
    while counted < days:
        day += timedelta(days=1)
        workday, known = is_workday(day)
        if not known:
            if day.year not in tables:
                tables[day.year] = _table(day.year)
            workday, known = is_workday(day, tables[day.year])
        exact = exact and known
        if workday:
            counted += 1

    end_local = local.replace(year=day.year, month=day.month, day=day.day,
                              hour=23, minute=59, second=59, microsecond=0)
    return end_local.astimezone(UTC).replace(tzinfo=None), exact


def is_provisional(deadline_utc):
    """Whether a deadline computed by ``add_working_days`` may still move.

    Years without data only ever follow the years the library knows, so a counted span
    touched one exactly when its last day lies in such a year.
    """
    if deadline_utc is None:
        return False
    local = deadline_utc.replace(tzinfo=UTC).astimezone(SHANGHAI)
    return not has_official_data(local.year)


# -- the office's table ------------------------------------------------------------------------

def list_calendar_days(year):
    return session().scalars(select(CalendarDay).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
        .order_by(CalendarDay.day)).all()


def _check_editor(actor):
    if actor is None or not actor.group_ids & CALENDAR_EDITORS:
        raise Forbidden("只有品牌管理办公室可以维护节假日表")


def set_calendar_day(day, is_workday, name, actor):
    """Mark ``day`` as a holiday (``is_workday`` False) or a worked weekend day (True)."""
    _check_editor(actor)
    if has_official_data(day.year):
        known = N_("该年份已有国务院公布的放假安排，以其为准")
        raise ValidationFailed("该年份无需手工维护", fields={"day": [known]})
    if bool(is_workday) == (day.weekday() < 5):
        pointless = N_("工作日标为上班、周末标为放假无需登记")
        raise ValidationFailed("此日期无需登记", fields={"is_workday": [pointless]})

    row = session().get(CalendarDay, day)
    if row is None:
        row = CalendarDay(day=day)
        session().add(row)
    row.is_workday = bool(is_workday)
    row.name = (name or "").strip()[:64]
    row.updated_by = actor.id
    row.updated_at = clock.now()
    session().flush()
    logger.info("calendar day %s set to workday=%s by user %s", day, row.is_workday, actor.id)
    return row


def remove_calendar_day(day, actor):
    _check_editor(actor)
    row = session().get(CalendarDay, day)
    if row is None:
        raise NotFound("节假日表中没有此日期", day=day.isoformat())
    session().delete(row)
    session().flush()
    logger.info("calendar day %s removed by user %s", day, actor.id)
