"""The deposit ledger pages for finance (保证金台账) and their CSV export.

Finance, the office and leadership see every enterprise; an enterprise user sees its
own ledger page.
"""

import csv
import io

import click
from flask import Blueprint, Response, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import clock, deposits, ledger
from engine.errors import Forbidden
from web.views_common import local_time

# cli_group=None: the blueprint's commands are top-level (``flask --app web reconcile-ledger``).
bp = Blueprint("finance", __name__, url_prefix="/finance", cli_group=None)

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _check_ledger_staff():
    if not ledger.may_view_ledger_pages(current_user):
        raise Forbidden("只有财务部、品牌管理办公室和领导小组可以查看保证金台账")


def _cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _yuan_plain(fen):
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@bp.route("/deposits")
@login_required
def index():
    _check_ledger_staff()
    enterprises = ledger.list_enterprises(current_user)
    sums = ledger.positions([e.id for e in enterprises])
    rows = [(e, sums.get(e.id, ledger.Position())) for e in enterprises]
    return render_template("deposits.html", rows=rows, shortfall=ledger.shortfall)


@bp.route("/deposits/<int:enterprise_id>")
@login_required
def show(enterprise_id):
    if current_user.enterprise_id != enterprise_id:
        _check_ledger_staff()
    enterprise = ledger.get_enterprise(enterprise_id)
    position = ledger.position(enterprise_id)
    check = ledger.reconcile(enterprise_id) if current_user.enterprise_id is None else None
    return render_template(
        "deposit_ledger.html", enterprise=enterprise, position=position,
        shortfall=ledger.shortfall(enterprise, position),
        entries=ledger.entries(enterprise_id), disputes=deposits.disputes_of(enterprise_id),
        kind_names=ledger.KIND_NAMES, dispute_states=deposits.STATUSES,
        escalations=deposits.ESCALATIONS, decisions=deposits.DECISIONS, check=check,
        approver_of=approver_of)


def approver_of(entry, name=lambda user: user.display_name):
    """Who approved a ledger entry, as the page and the export say it: the person, or the
    system when a case's deadline made it (a timer step has no person)."""
    if entry.approver is not None:
        return name(entry.approver)
    return _("系统（到期自动）") if entry.instance_id else ""


def _csv(entries, filename):
    ids = {entry.enterprise_id for entry in entries}
    names = ledger.enterprise_names(ids)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("企业编号"), _("企业"), _("序号"), _("类型"), _("金额（元）"),
                     _("金额（分）"), _("案件编号"), _("审批人"), _("备注"), _("时间")])
    for entry in entries:
        writer.writerow([
            entry.enterprise_id, _cell(names.get(entry.enterprise_id)), entry.sequence,
            _(ledger.KIND_NAMES[entry.kind]), _yuan_plain(entry.amount_fen), entry.amount_fen,
            entry.instance_id or "", _cell(approver_of(entry, lambda user: user.username)),
            _cell(entry.note), local_time(entry.created_at, "%Y-%m-%d %H:%M:%S")])
    # A byte-order mark, so that spreadsheet programs read the Chinese text as UTF-8.
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.route("/deposits.csv")
@login_required
def export_all():
    _check_ledger_staff()
    stamp = clock.now().strftime("%Y%m%d")
    return _csv(ledger.entries(), f"deposit-ledger-{stamp}.csv")


@bp.route("/deposits/<int:enterprise_id>.csv")
@login_required
def export_one(enterprise_id):
    _check_ledger_staff()
    ledger.get_enterprise(enterprise_id)
    stamp = clock.now().strftime("%Y%m%d")
    return _csv(ledger.entries(enterprise_id), f"deposit-ledger-{enterprise_id}-{stamp}.csv")


@bp.cli.command("reconcile-ledger")
def reconcile_ledger_command():
    """Check every deposit ledger entry and balance; exit status 1 when anything is wrong."""
    result = ledger.reconcile()
    for enterprise_id, position in sorted(result.positions.items()):
        click.echo(f"enterprise {enterprise_id}: {result.counts[enterprise_id]} entries, "
                   f"balance {position.balance_fen} fen, frozen {position.frozen_fen}, "
                   f"available {position.available_fen}, advanced {position.advanced_fen}")
    for enterprise_id, sequence, code, detail in result.problems:
        click.echo(f"PROBLEM enterprise {enterprise_id} entry {sequence}: {code} {detail}",
                   err=True)
    if not result.ok:
        raise SystemExit(1)
    click.echo("every deposit ledger reconciles")
