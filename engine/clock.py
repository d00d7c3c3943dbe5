"""The one clock the engine reads.

Everything that asks for "now" (due dates, timer rows, SpiffWorkflow's own
timer events, history) reads ``clock.now()``. In demo and test modes the clock
can be moved forward by an administrator; the offset lives in the database so
that every process serving the app agrees on it. SpiffWorkflow calls
``datetime.now(timezone.utc)`` inside its timer module, so that module's
``datetime`` name is pointed at a subclass whose ``now`` reads this clock.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import SpiffWorkflow.bpmn.specs.event_definitions.timer as spiff_timer

_offset = timedelta(0)
_BEIJING = ZoneInfo("Asia/Shanghai")


def now():
    """Current time in UTC, naive (as the database columns store it)."""
    return datetime.now(UTC).replace(tzinfo=None) + _offset


def now_aware():
    return datetime.now(UTC) + _offset


def today():
    """Today's date in Beijing (Asia/Shanghai), the date the office and enterprises write."""
    return now_aware().astimezone(_BEIJING).date()


def offset():
    return _offset


def set_offset(delta):
    """Set the in-process offset (the caller persists it)."""
    global _offset
    _offset = delta


class _ClockDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        current = now_aware()
        return current if tz is not None else current.replace(tzinfo=None)


spiff_timer.datetime = _ClockDatetime


_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$")


# No deadline, timer or clock step of this office is longer (a century): anything longer is
# a typing mistake or hostile, and would overflow date arithmetic.
MAX_DURATION = timedelta(days=36_525)
# The virtual clock stops here: working-day calendars and dates end long before year 9999.
CLOCK_LIMIT = datetime(2200, 1, 1)


def parse_duration(text):
    """Parse an ISO 8601 duration of weeks, days, hours, minutes, seconds ("P3D", "PT90M").

    Years and months are refused: their length depends on the start date, and every
    deadline in this office is stated in days or working days.
    """
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration of days and hours: {text!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    try:
        delta = timedelta(**parts)
    except OverflowError:
        delta = None
    if delta is None or delta > MAX_DURATION:
        raise ValueError(f"a duration longer than {MAX_DURATION.days} days: {text!r}")
    return delta


def load_offset():
    """Read the virtual clock's offset from the database (demo and test modes)."""
    from engine.db import session
    from engine.models import ClockOffset

    row = session().get(ClockOffset, 1)
    set_offset(timedelta(seconds=row.seconds) if row else timedelta(0))


def advance(duration):
    """Move the virtual clock forward by an ISO duration and persist it; returns the new now.

    The caller fires the timers that fell due (``engine.timers.fire_due_timers``).
    """
    from engine.db import session
    from engine.models import ClockOffset

    delta = parse_duration(duration)
    if delta <= timedelta(0):
        raise ValueError("the clock only moves forward")
    if now() + delta >= CLOCK_LIMIT:
        raise ValueError(f"the virtual clock stops before {CLOCK_LIMIT:%Y}")
    row = session().get(ClockOffset, 1, with_for_update=True)
    if row is None:
        row = ClockOffset(id=1, seconds=0)
        session().add(row)
    row.seconds = int(row.seconds) + int(delta.total_seconds())
    session().flush()
    set_offset(timedelta(seconds=row.seconds))
    return now()
