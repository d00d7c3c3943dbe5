"""The royalty pages (品牌权费台账): the office's yearly totals and each enterprise's ledger.

Finance, market, the office and leadership see every enterprise; an enterprise user
sees its own ledger page.
"""

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from engine import ledger, royalties

bp = Blueprint("royalties", __name__, url_prefix="/royalties")


@bp.route("/")
@login_required
def index():
    royalties.check_staff(current_user)
    return render_template("royalties.html", years=royalties.yearly_totals(),
                           enterprises=royalties.enterprise_summaries())


@bp.route("/enterprises/<int:enterprise_id>")
@login_required
def ledger_page(enterprise_id):
    royalties.check_may_view(current_user, enterprise_id)
    enterprise = ledger.get_enterprise(enterprise_id)
    rows = royalties.royalties_of(enterprise_id)
    return render_template("royalty_ledger.html", enterprise=enterprise, rows=rows,
                           totals=royalties.totals(rows), statuses=royalties.STATUSES,
                           flags=royalties.FLAGS, decisions=royalties.DECISIONS,
                           period_label=royalties.period_label)
