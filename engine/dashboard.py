"""The leadership dashboard's figures (领导驾驶舱): every number, computed in one place.

Each chart is a ``Chart``: a key (its URL, ``/dashboard/<key>.csv``), a title, the
columns of its table and the rows. The numbers are aggregations in SQL over the
projections the engine keeps anyway (human tasks, the deposit ledger, label scans,
complaints, royalties), so filling the dashboard never deserializes a workflow. Two
steps are finished in Python because SQLite and PostgreSQL disagree on them: the median
of each step's durations, and which township a scan's coordinates fall in.

Definitions a reader would ask about:

- an *open case* is a case with an open human task; it counts once per department
  whose lane holds one of its open tasks (the inbox's own rows);
- a task is *overdue* when its due time is before ``clock.now()``;
- a case is *escalated* while it is running and either has an open 督办 task (every
  diagram names its escalation tasks 督办：...) or its record says so (a complaint or a
  deposit dispute with ``escalated_at``, a royalty escalated to leadership);
- months and days are Beijing calendar months and days (UTC+8, no daylight saving);
- money is integer fen; the web layer shows yuan.

No Flask here: titles and headers are marked with ``N_`` and translated by the caller.
"""

import json
import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import import_module
from pathlib import Path

from sqlalchemy import and_, case, distinct, func, literal_column, or_, select

from engine import clock, ledger
from engine.complaints import Complaint
from engine.db import is_postgres, session
from engine.deposits import DepositDispute
from engine.errors import N_, Forbidden, NotFound
from engine.labels import Label, LabelScan
from engine.licensing import PRODUCTS, Licence
from engine.models import Enterprise, HumanTask, Instance, ProcessVersion

logger = logging.getLogger(__name__)

# Who sees the dashboard.
DASHBOARD_GROUPS = frozenset({"leadership", "office"})
# The prefix every diagram gives its escalation tasks (督办：投诉受理超期, ...).
ESCALATION_PREFIX = "督办"
# How many days of scans the daily chart shows.
SCAN_DAYS = 30
BEIJING_OFFSET_HOURS = 8
TOWNSHIPS_FILE = Path(__file__).parent / "data" / "yingjiang_townships.json"
# Pseudo-townships for scans the map cannot place.
OUTSIDE, UNKNOWN = "outside", "unknown"


@dataclass(frozen=True)
class Column:
    """One column of a chart's table: ``kind`` tells the web layer how to show the value.

    Kinds: ``process``, ``group``, ``product``, ``township`` (codes shown by name),
    ``text``, ``int``, ``hours`` (a float), ``coord`` (degrees), ``fen`` (money).
    """

    key: str
    header: str
    kind: str = "int"


@dataclass
class Chart:
    key: str
    title: str
    columns: list
    rows: list = field(default_factory=list)
    # False when the data's module is not installed yet: the page says so.
    available: bool = True
    note: str | None = None


def check_may_view(user):
    if user.enterprise_id is not None or not user.group_ids & DASHBOARD_GROUPS:
        raise Forbidden("只有领导小组和品牌管理办公室可以查看领导驾驶舱")


# -- helpers -----------------------------------------------------------------------------------

def _local_period(column, unit):
    """The Beijing calendar month ("2026-12") or day ("2026-12-04") of a UTC column, in SQL."""
    if is_postgres():
        shifted = column + literal_column(f"interval '{BEIJING_OFFSET_HOURS} hours'")
        return func.to_char(shifted, "YYYY-MM" if unit == "month" else "YYYY-MM-DD")
    return func.strftime("%Y-%m" if unit == "month" else "%Y-%m-%d", column,
                         f"+{BEIJING_OFFSET_HOURS} hours")


def _optional_module(name):
    """A domain module another part of the system may not have yet (royalties, inspections)."""
    try:
        return import_module(f"engine.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"engine.{name}":
            raise
        return None


def process_names():
    """{process key: name of its newest version}, for showing keys."""
    newest = (select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"))
              .group_by(ProcessVersion.process_key).subquery())
    rows = session().execute(
        select(ProcessVersion.process_key, ProcessVersion.name)
        .join(newest, and_(newest.c.process_key == ProcessVersion.process_key,
                           newest.c.v == ProcessVersion.version)))
    return {key: name for key, name in rows}


# -- cases -------------------------------------------------------------------------------------

def open_cases():
    """Open cases and open tasks by process and department (the lanes of open tasks)."""
    rows = session().execute(
        select(HumanTask.process_key, HumanTask.group_id,
               func.count(distinct(HumanTask.instance_id)), func.count(HumanTask.id))
        .where(HumanTask.state == "open")
        .group_by(HumanTask.process_key, HumanTask.group_id)
        .order_by(HumanTask.process_key, HumanTask.group_id))
    return Chart("open_cases", N_("在办案件（按流程和部门）"), [
        Column("process", N_("流程"), "process"), Column("group", N_("部门"), "group"),
        Column("cases", N_("案件数")), Column("tasks", N_("待办任务数")),
    ], [{"process": p, "group": g, "cases": c, "tasks": t} for p, g, c, t in rows])


def overdue_tasks(now=None):
    """Open tasks past their due time, and the cases they hold up, by process and department."""
    now = now or clock.now()
    rows = session().execute(
        select(HumanTask.process_key, HumanTask.group_id,
               func.count(distinct(HumanTask.instance_id)), func.count(HumanTask.id),
               func.min(HumanTask.due_at))
        .where(HumanTask.state == "open", HumanTask.due_at < now)
        .group_by(HumanTask.process_key, HumanTask.group_id)
        .order_by(HumanTask.process_key, HumanTask.group_id))
    return Chart("overdue", N_("超期案件（按流程和部门）"), [
        Column("process", N_("流程"), "process"), Column("group", N_("部门"), "group"),
        Column("cases", N_("超期案件数")), Column("tasks", N_("超期任务数")),
        Column("max_days_overdue", N_("最长超期（天）"), "hours"),
    ], [{"process": p, "group": g, "cases": c, "tasks": t,
         "max_days_overdue": round((now - earliest).total_seconds() / 86400, 1)}
        for p, g, c, t, earliest in rows])


def _escalated_instances():
    """A select of (instance id, process key) of running escalated cases (may repeat)."""
    running = Instance.status == "running"
    parts = [
        select(HumanTask.instance_id.label("instance_id"),
               HumanTask.process_key.label("process_key"))
        .where(HumanTask.state == "open", HumanTask.name.like(ESCALATION_PREFIX + "%")),
        select(Instance.id, Instance.process_key)
        .join(Complaint, Complaint.instance_id == Instance.id)
        .where(running, Complaint.escalated_at.is_not(None)),
        select(Instance.id, Instance.process_key)
        .join(DepositDispute, DepositDispute.instance_id == Instance.id)
        .where(running, DepositDispute.escalated_at.is_not(None)),
    ]
    royalties = _optional_module("royalties")
    if royalties is not None:
        parts.append(select(Instance.id, Instance.process_key)
                     .join(royalties.Royalty, royalties.Royalty.instance_id == Instance.id)
                     .where(running, or_(royalties.Royalty.escalated_at.is_not(None),
                                         royalties.Royalty.status == "escalated")))
    return parts[0].union(*parts[1:]).subquery()


def escalated_cases():
    """Running cases escalated to leadership, by process."""
    cases = _escalated_instances()
    rows = session().execute(
        select(cases.c.process_key, func.count(distinct(cases.c.instance_id)))
        .group_by(cases.c.process_key).order_by(cases.c.process_key))
    return Chart("escalated", N_("督办案件（按流程）"), [
        Column("process", N_("流程"), "process"), Column("cases", N_("督办案件数")),
    ], [{"process": p, "cases": c} for p, c in rows])


def escalated_case_list(limit=50):
    """The escalated cases themselves, newest first, for the table under the chart."""
    cases = _escalated_instances()
    ids = select(cases.c.instance_id).distinct().scalar_subquery()
    return session().scalars(select(Instance).where(Instance.id.in_(ids))
                             .order_by(Instance.id.desc()).limit(limit)).all()


def step_durations():
    """Median time from a step's creation to its completion, per process and step.

    The durations come out of SQL sorted per step; the median is taken here because
    SQLite has no percentile function.
    """
    rows = session().execute(
        select(HumanTask.process_key, HumanTask.spec_name, HumanTask.name,
               HumanTask.created_at, HumanTask.completed_at)
        .where(HumanTask.state == "completed", HumanTask.completed_at.is_not(None))
        .order_by(HumanTask.process_key, HumanTask.spec_name, HumanTask.id))
    durations, names = defaultdict(list), {}
    for process, spec, name, created, completed in rows:
        durations[(process, spec)].append(max(0.0, (completed - created).total_seconds()))
        names[(process, spec)] = name
    return Chart("step_durations", N_("各环节办理用时中位数"), [
        Column("process", N_("流程"), "process"), Column("step", N_("环节"), "text"),
        Column("completed", N_("已办结任务数")),
        Column("median_hours", N_("用时中位数（小时）"), "hours"),
    ], [{"process": process, "step": names[(process, spec)], "completed": len(seconds),
         "median_hours": round(statistics.median(seconds) / 3600, 1)}
        for (process, spec), seconds in sorted(durations.items())])


# -- admissions, licences, complaints ------------------------------------------------------------

def _count_by_month(column, *conditions):
    month = _local_period(column, "month")
    rows = session().execute(select(month, func.count()).where(column.is_not(None), *conditions)
                             .group_by(month))
    return dict(rows.all())


def admissions_and_licences():
    """Per Beijing month: enterprises admitted, licences granted, licences revoked."""
    admitted = _count_by_month(Enterprise.admitted_at)
    granted = _count_by_month(Licence.signed_at)
    revoked = _count_by_month(Licence.revoked_at)
    months = sorted(set(admitted) | set(granted) | set(revoked))
    return Chart("admissions_licences", N_("准入与授权（按月）"), [
        Column("month", N_("月份"), "text"), Column("admitted", N_("准入企业数")),
        Column("licences_granted", N_("授权许可数")), Column("licences_revoked", N_("撤销许可数")),
    ], [{"month": m, "admitted": admitted.get(m, 0), "licences_granted": granted.get(m, 0),
         "licences_revoked": revoked.get(m, 0)} for m in months])


def complaints_by_product():
    """Complaints per product: all, still open, and found at fault."""
    open_status = Complaint.status.in_(("filed", "accepted"))
    rows = session().execute(
        select(Complaint.product, func.count(),
               _count_where(open_status), _count_where(Complaint.status == "at_fault"),
               _count_where(Complaint.escalated_at.is_not(None)))
        .group_by(Complaint.product).order_by(func.count().desc(), Complaint.product))
    return Chart("complaints_by_product", N_("投诉（按产品）"), [
        Column("product", N_("产品"), "product"), Column("complaints", N_("投诉数")),
        Column("open", N_("办理中")), Column("at_fault", N_("经营者有责")),
        Column("escalated", N_("曾督办")),
    ], [{"product": p or "", "complaints": n, "open": int(o or 0), "at_fault": int(f or 0),
         "escalated": int(e or 0)} for p, n, o, f, e in rows])


def _count_where(condition):
    return func.sum(case((condition, 1), else_=0))


# -- money -------------------------------------------------------------------------------------

def deposits():
    """Deposits held, frozen, available and advanced per enterprise (the ledger's sums)."""
    positions = ledger.positions()
    names = ledger.enterprise_names(positions)
    rows = [{"enterprise": names.get(eid, str(eid)), "enterprise_id": eid,
             "held_fen": p.held_fen, "frozen_fen": p.frozen_fen,
             "available_fen": p.available_fen, "advanced_fen": p.advanced_fen}
            for eid, p in sorted(positions.items())]
    return Chart("deposits", N_("履约保证金（按企业）"), [
        Column("enterprise", N_("企业"), "text"), Column("held_fen", N_("实存保证金"), "fen"),
        Column("frozen_fen", N_("其中冻结"), "fen"), Column("available_fen", N_("可用"), "fen"),
        Column("advanced_fen", N_("先行垫付待追回"), "fen"),
    ], rows)


def royalties():
    """Royalties assessed, collected and still due, per period."""
    columns = [
        Column("period", N_("征收周期"), "text"), Column("assessed_fen", N_("核定权费"), "fen"),
        Column("collected_fen", N_("已收缴"), "fen"), Column("due_fen", N_("待缴"), "fen"),
        Column("overdue_fen", N_("其中逾期"), "fen"),
    ]
    module = _optional_module("royalties")
    if module is None:
        return Chart("royalties", N_("品牌权费（按周期）"), columns, available=False,
                     note=N_("暂无数据来源：权费模块尚未启用"))
    royalty = module.Royalty
    now = clock.now()

    def fen_where(condition):
        return func.coalesce(func.sum(case((condition, royalty.royalty_fen), else_=0)), 0)

    outstanding = royalty.status.in_(module.OUTSTANDING)
    rows = session().execute(
        select(royalty.period_start, royalty.period_end,
               func.coalesce(func.sum(royalty.royalty_fen), 0),
               fen_where(royalty.status.in_(module.COLLECTED)),
               fen_where(outstanding),
               fen_where(and_(outstanding, royalty.due_on < now)))
        .where(royalty.royalty_fen.is_not(None))
        .group_by(royalty.period_start, royalty.period_end)
        .order_by(royalty.period_start, royalty.period_end))
    return Chart("royalties", N_("品牌权费（按周期）"), columns, [
        {"period": f"{start.isoformat()}~{end.isoformat()}", "assessed_fen": int(total),
         "collected_fen": int(collected), "due_fen": int(due), "overdue_fen": int(overdue)}
        for start, end, total, collected, due, overdue in rows])


# -- labels ------------------------------------------------------------------------------------

SCAN_STATUSES = ("genuine", "suspect", "counterfeit", "revoked")


def scans_per_day(days=SCAN_DAYS, now=None):
    """Label scans per Beijing day over the last ``days`` days, by verification result."""
    now = now or clock.now()
    day = _local_period(LabelScan.scanned_at, "day")
    start = now - timedelta(days=days)
    counts = defaultdict(dict)
    for d, status, n in session().execute(
            select(day, LabelScan.status, func.count())
            .where(LabelScan.scanned_at >= start, LabelScan.scanned_at <= now)
            .group_by(day, LabelScan.status)):
        counts[d][status] = n
    first = (start + timedelta(hours=BEIJING_OFFSET_HOURS)).date()
    last = (now + timedelta(hours=BEIJING_OFFSET_HOURS)).date()
    rows, current = [], first
    while current <= last:
        key = current.isoformat()
        rows.append({"day": key, **{s: counts[key].get(s, 0) for s in SCAN_STATUSES}})
        current += timedelta(days=1)
    return Chart("scans", N_("每日扫码查验"), [
        Column("day", N_("日期"), "text"), Column("genuine", N_("正品")),
        Column("suspect", N_("可疑")), Column("counterfeit", N_("假冒")),
        Column("revoked", N_("已撤销")),
    ], rows)


@cache
def townships():
    """The schematic township table: (townships, note, max_km)."""
    data = json.loads(TOWNSHIPS_FILE.read_text(encoding="utf-8"))
    return tuple(data["townships"]), data["note"], float(data["max_km"])


def nearest_township(lat, lng):
    """The code of the township whose (approximate) centre is nearest, or OUTSIDE / UNKNOWN."""
    from engine.labels import distance_km

    if lat is None or lng is None or not (math.isfinite(lat) and math.isfinite(lng)):
        return UNKNOWN
    places, _note, max_km = townships()
    km, code = min((distance_km(lat, lng, t["lat"], t["lng"]), t["code"]) for t in places)
    return code if km <= max_km else OUTSIDE


def scan_map():
    """Scans, suspect scans and suspect labels per township, by each scan's position.

    Scans without coordinates (the scanner refused to share them: only a network prefix
    was kept) are counted under UNKNOWN; those far from every township under OUTSIDE.
    """
    totals = defaultdict(lambda: {"scans": 0, "suspect_scans": 0, "counterfeit_scans": 0})
    for lat, lng, status, n in session().execute(
            select(LabelScan.lat, LabelScan.lng, LabelScan.status, func.count())
            .group_by(LabelScan.lat, LabelScan.lng, LabelScan.status)):
        place = totals[nearest_township(lat, lng)]
        place["scans"] += n
        if status == "suspect":
            place["suspect_scans"] += n
        elif status == "counterfeit":
            place["counterfeit_scans"] += n

    # A suspect label belongs to every township where it was scanned as suspect.
    suspect_labels = defaultdict(set)
    for serial, lat, lng in session().execute(
            select(LabelScan.serial, LabelScan.lat, LabelScan.lng).distinct()
            .join(Label, Label.serial == LabelScan.serial)
            .where(LabelScan.status == "suspect", Label.suspect_at.is_not(None))):
        suspect_labels[nearest_township(lat, lng)].add(serial)

    places, note, _max_km = townships()
    rows = []
    for township in places + ({"code": OUTSIDE, "lat": None, "lng": None},
                              {"code": UNKNOWN, "lat": None, "lng": None}):
        code = township["code"]
        rows.append({"township": code, "lat": township["lat"], "lng": township["lng"],
                     **totals[code], "suspect_labels": len(suspect_labels[code])})
    return Chart("scan_map", N_("扫码与可疑标签分布（乡镇示意图）"), [
        Column("township", N_("乡镇"), "township"), Column("lat", N_("纬度（近似）"), "coord"),
        Column("lng", N_("经度（近似）"), "coord"), Column("scans", N_("扫码次数")),
        Column("suspect_scans", N_("可疑扫码")), Column("counterfeit_scans", N_("假冒扫码")),
        Column("suspect_labels", N_("可疑标签数")),
    ], rows, note=N_("示意图：乡镇位置为近似中心点，非测绘地图；扫码按最近的乡镇归类，"
                     "距任何乡镇超过 35 公里计为县外，未提供位置的计为位置不明。"))


def inspections():
    """Sampling inspections by result, when the inspections module exists."""
    columns = [Column("result", N_("结果"), "text"), Column("inspections", N_("抽检数"))]
    module = _optional_module("inspections")
    table = getattr(module, "Inspection", None) if module is not None else None
    if table is None or not hasattr(table, "result"):
        return Chart("inspections", N_("抽检结果"), columns, available=False,
                     note=N_("暂无数据来源：抽检模块尚未启用"))
    # Only inspections whose results are in; the result's Chinese name, as the page shows it.
    rows = session().execute(select(table.result, func.count()).where(table.result.is_not(None))
                             .group_by(table.result).order_by(table.result.desc()))
    names = getattr(module, "RESULTS", {})
    return Chart("inspections", N_("抽检结果"), columns,
                 [{"result": names.get(r, r), "inspections": n} for r, n in rows])


# -- the whole dashboard -----------------------------------------------------------------------

CHARTS = {
    "open_cases": open_cases,
    "overdue": overdue_tasks,
    "escalated": escalated_cases,
    "step_durations": step_durations,
    "admissions_licences": admissions_and_licences,
    "deposits": deposits,
    "royalties": royalties,
    "scans": scans_per_day,
    "scan_map": scan_map,
    "complaints_by_product": complaints_by_product,
    "inspections": inspections,
}


def chart(key):
    """One chart by its key; 404 for an unknown key."""
    builder = CHARTS.get(key)
    if builder is None:
        raise NotFound("没有这个图表", chart=key)
    return builder()


def summary(now=None):
    """The headline figures above the charts."""
    now = now or clock.now()
    s = session()
    escalated = _escalated_instances()
    totals = ledger.Position.from_sums(dict(s.execute(
        select(ledger.DepositEntry.kind, func.sum(ledger.DepositEntry.amount_fen))
        .group_by(ledger.DepositEntry.kind)).all()))
    figures = {
        "running_cases": s.scalar(select(func.count()).where(Instance.status == "running")),
        "open_tasks": s.scalar(select(func.count()).where(HumanTask.state == "open")),
        "overdue_tasks": s.scalar(select(func.count()).where(
            HumanTask.state == "open", HumanTask.due_at < now)),
        "escalated_cases": s.scalar(select(func.count(distinct(escalated.c.instance_id)))),
        "deposits_held_fen": totals.held_fen,
        "deposits_frozen_fen": totals.frozen_fen,
        "suspect_labels": s.scalar(select(func.count()).where(Label.suspect_at.is_not(None))),
        "active_licences": s.scalar(select(func.count()).where(Licence.status == "active")),
    }
    module = _optional_module("royalties")
    if module is not None:
        figures["royalties_due_fen"] = int(s.scalar(
            select(func.coalesce(func.sum(module.Royalty.royalty_fen), 0))
            .where(module.Royalty.status.in_(module.OUTSTANDING))))
    return figures


def product_name(code):
    return PRODUCTS.get(code, code)
