"""The leadership dashboard (领导驾驶舱) and each chart's CSV download.

Only ``leadership`` and ``office`` see it. Every figure comes from ``engine.dashboard``;
this module only turns codes into names in the reader's language and fen into yuan.
"""

import csv
import io

from flask import Blueprint, Response, render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import clock, dashboard
from web.views_common import group_name, local_time

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _township_name(code):
    if code == dashboard.OUTSIDE:
        return _("县外")
    if code == dashboard.UNKNOWN:
        return _("位置不明")
    english = str(get_locale()) == "en"
    for township in dashboard.townships()[0]:
        if township["code"] == code:
            return township["name_en"] if english else township["name_zh"]
    return code


def _product_name(code):
    return _(dashboard.product_name(code)) if code else _("未注明")


def _yuan_plain(fen):
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _displayer(processes):
    """A function (column, value) -> what a reader sees in a table cell or a CSV cell."""
    names = {
        "process": lambda v: _(processes.get(v, v)),
        "group": group_name,
        "product": _product_name,
        "township": _township_name,
        "fen": _yuan_plain,
        "hours": lambda v: f"{v:.1f}",
        "coord": lambda v: "" if v is None else f"{v:.3f}",
    }
    return lambda column, value: names.get(column.kind, str)(value)


def _header(column):
    header = _(column.header)
    return _("%(header)s（元）", header=header) if column.kind == "fen" else header


def _for_page(chart, show):
    """A chart as the page's script draws it: display names and numbers in yuan."""
    numbers = ("int", "hours", "coord")
    rows = []
    for row in chart.rows:
        rows.append({c.key: (row[c.key] if c.kind in numbers
                             else row[c.key] / 100 if c.kind == "fen"
                             else show(c, row[c.key])) for c in chart.columns})
    return {"key": chart.key, "title": _(chart.title), "available": chart.available,
            "note": _(chart.note) if chart.note else None,
            "columns": [{"key": c.key, "header": _header(c), "kind": c.kind}
                        for c in chart.columns],
            "rows": rows}


@bp.route("")
@login_required
def index():
    dashboard.check_may_view(current_user)
    show = _displayer(dashboard.process_names())
    charts = [builder() for builder in dashboard.CHARTS.values()]
    return render_template(
        "dashboard.html", charts=charts, page_data=[_for_page(c, show) for c in charts],
        show=show, header=_header, summary=dashboard.summary(),
        escalated=dashboard.escalated_case_list(), as_of=local_time(clock.now()))


@bp.route("/<chart_key>.csv")
@login_required
def export(chart_key):
    dashboard.check_may_view(current_user)
    chart = dashboard.chart(chart_key)
    show = _displayer(dashboard.process_names())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_header(c) for c in chart.columns])
    for row in chart.rows:
        cells = [show(c, row[c.key]) for c in chart.columns]
        writer.writerow(["'" + cell if cell.startswith(_FORMULA_START) and c.kind == "text"
                         else cell for cell, c in zip(cells, chart.columns, strict=True)])
    stamp = clock.now().strftime("%Y%m%d")
    # A byte-order mark, so that spreadsheet programs read the Chinese text as UTF-8.
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f"attachment; filename=dashboard-{chart.key}-{stamp}.csv"})
