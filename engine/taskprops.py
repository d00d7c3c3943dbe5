"""What this system reads from a user task's ``spiffworkflow:properties``.

``form`` names a file in ``forms/``; ``due`` and ``follow_up`` are periods after
the task is created: an ISO 8601 duration ("P5D", "PT4H") or working days
("5WD", counted on the Chinese working-day calendar).
"""

import re
from dataclasses import dataclass

from engine.clock import parse_duration
from engine.workdays import add_working_days

_WORKING_DAYS = re.compile(r"^\s*(\d{1,3})\s*WD\s*$", re.IGNORECASE)


def period_is_valid(text):
    try:
        _period_end(text, None, check_only=True)
        return True
    except ValueError:
        return False


def _period_end(text, start, check_only=False):
    match = _WORKING_DAYS.match(text or "")
    if match:
        return None if check_only else add_working_days(start, int(match.group(1)))[0]
    delta = parse_duration(text)
    return None if check_only else start + delta


@dataclass(frozen=True)
class TaskProperties:
    form: str | None
    due: str | None
    follow_up: str | None

    def due_from(self, created):
        return _period_end(self.due, created) if self.due else None

    def follow_up_from(self, created):
        return _period_end(self.follow_up, created) if self.follow_up else None


def task_properties(task_spec):
    props = (getattr(task_spec, "extensions", None) or {}).get("properties", {}) or {}
    return TaskProperties(form=props.get("form"), due=props.get("due"),
                          follow_up=props.get("follow_up"))
