"""Working-day arithmetic in Asia/Shanghai, from the maintained ``chinesecalendar`` data.

The State Council publishes each year's holidays late in the year before; when
the library has no data for a date, weekends alone are used and the result is
marked provisional so that the UI can say so.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def is_workday(day):
    """(is a working day, known from published data) for a ``date``."""
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start_utc, days):
    """The UTC instant ``days`` working days after ``start_utc`` (naive UTC), and whether exact.

    The deadline falls at the end of the last working day, 23:59:59 Shanghai time,
    which is how the office reads "within N working days".
    """
    local = start_utc.replace(tzinfo=UTC).astimezone(SHANGHAI)
    day = local.date()
    exact = True
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        workday, known = is_workday(day)
        exact = exact and known
        if workday:
            counted += 1

    end_local = local.replace(year=day.year, month=day.month, day=day.day,
                              hour=23, minute=59, second=59, microsecond=0)
    return end_local.astimezone(UTC).replace(tzinfo=None), exact
