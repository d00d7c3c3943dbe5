"""Rules that policy staff edit: thresholds and limits read by the code at the moment of use.

Code says what a rule means (its type, default and description, in ``KNOWN``); a
row in ``rules`` says what it is today. Every change is kept in ``rule_changes``
(who, when, old and new value), so a decision taken under an older value can be
explained later.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Forbidden, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

RULE_EDITORS = frozenset({"office"})


@dataclass(frozen=True)
class RuleSpec:
    kind: type
    default: object
    description: str
    minimum: float = 0
    # When not empty, the only values the rule may take.
    choices: tuple = ()


KNOWN = {
    "label.suspect_scan_count": RuleSpec(
        int, 20, N_("同一标签被扫码超过此次数即视为疑似复制"), minimum=1),
    "label.suspect_km_per_hour": RuleSpec(
        int, 300, N_("同一标签相邻两次定位扫码的移动速度超过此值（公里/小时）即视为疑似复制"),
        minimum=1),
    "label.suspect_min_km": RuleSpec(
        int, 20, N_("相距小于此距离（公里）的两次扫码不做速度判断，以免定位误差误报")),
}


class Rule(Base):
    __tablename__ = "rules"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class RuleChange(Base):
    """One edit of a rule (the audit trail)."""

    __tablename__ = "rule_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str] = mapped_column(String(200))
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


# Integer rules are counts, distances and days: a value beyond this is a typing mistake.
RULE_INT_LIMIT = 2**31 - 1


def _parse(kind, raw):
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError("a boolean is not a number")
        number = int(str(raw).strip())
        if abs(number) > RULE_INT_LIMIT:
            raise ValueError("beyond any sensible threshold")
        return number
    if kind is float:
        number = float(str(raw).strip())
        # "nan" and "inf" parse as floats, but no comparison with them means anything.
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    return str(raw)


def get_rule(key, default=None):
    """Today's value of rule ``key``, typed like its default; ``default`` when unset."""
    spec = KNOWN.get(key)
    if default is None and spec is not None:
        default = spec.default
    row = session().get(Rule, key)
    if row is None:
        return default
    kind = spec.kind if spec is not None else type(default) if default is not None else str
    try:
        return _parse(kind, row.value)
    except ValueError:
        logger.error("rule %s holds %r, not a %s; using %r", key, row.value, kind.__name__,
                     default)
        return default


def list_rules():
    """Every known rule with its value today, and any other stored rule."""
    rows = {row.key: row for row in session().scalars(select(Rule))}
    listed = []
    for key, spec in KNOWN.items():
        row = rows.pop(key, None)
        listed.append({"key": key, "value": get_rule(key), "default": spec.default,
                       "description": spec.description,
                       "updated_at": row.updated_at if row else None})
    for key, row in sorted(rows.items()):
        listed.append({"key": key, "value": row.value, "default": None,
                       "description": row.description, "updated_at": row.updated_at})
    return listed


def rule_history(key):
    return session().scalars(select(RuleChange).where(RuleChange.key == key)
                             .order_by(RuleChange.id.desc())).all()


def set_rule(key, value, actor, reason=""):
    """Office staff change a known rule; the value is checked against its type and minimum."""
    if actor is None or not actor.group_ids & RULE_EDITORS:
        raise Forbidden("只有品牌管理办公室可以修改规则")
    spec = KNOWN.get(key)
    if spec is None:
        raise NotFound("规则不存在", key=key)
    try:
        parsed = _parse(spec.kind, value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed < spec.minimum:
        problem = N_("应为不小于下限的数值")
        raise ValidationFailed("规则取值无效", fields={"value": [problem]},
                               minimum=spec.minimum)
    if spec.choices and parsed not in spec.choices:
        problem = N_("只能取以下值之一")
        raise ValidationFailed("规则取值无效", fields={"value": [problem]},
                               choices=list(spec.choices))

    now = clock.now()
    row = session().get(Rule, key)
    old = row.value if row is not None else None
    if row is None:
        row = Rule(key=key, description=spec.description)
        session().add(row)
    row.value = str(parsed)
    row.updated_by = actor.id
    row.updated_at = now
    session().add(RuleChange(key=key, old_value=old, new_value=row.value, changed_by=actor.id,
                             changed_at=now, reason=str(reason or "")[:2000]))
    session().flush()
    logger.info("rule %s changed from %s to %s by user %s", key, old, row.value, actor.id)
    return parsed
