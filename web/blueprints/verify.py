"""Public label verification: the page a phone opens from a label's QR code, and its JSON twin.

No account is needed. Every call counts a scan, so both endpoints are rate-limited
per client address (Flask-Limiter; ``PUBLIC_RATE_LIMIT``, storage
``RATELIMIT_STORAGE_URI``). Behind a reverse proxy the client address must be
restored first (werkzeug's ProxyFix), or every consumer shares the proxy's limit.

Place of a scan: the page's script asks the phone for its position and reloads
with ``lat``/``lng`` (or ``geo=0`` when refused or unavailable); without them the
place is the client's network prefix (/24 for IPv4, /48 for IPv6). There is no
GeoIP database here, so that prefix is recorded as it is, not as a town.
"""

import ipaddress
import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from config import SettingsError
from engine import labels, trace
from engine.errors import N_
from engine.licensing import PRODUCTS
from web.views_common import commit, local_time

logger = logging.getLogger(__name__)

bp = Blueprint("verify", __name__)
limiter = Limiter(get_remote_address)

STATUS_TEXT = {
    labels.GENUINE: N_("正品"),
    labels.COUNTERFEIT: N_("假冒：此码不是本品牌发放的标签"),
    labels.REVOKED: N_("已失效：该标签所属授权已撤销或标签已作废"),
    labels.SUSPECT: N_("疑似复制：此码的扫码情况异常，请谨慎购买"),
}
REVOKED_BECAUSE = {
    "licence": N_("品牌授权已撤销"),
    "batch": N_("该批标签已作废"),
    "key": N_("签发标签的密钥已停用"),
}


def init_app(app):
    """Configure the label engine and the rate limiter from the settings."""
    base = app.config["PUBLIC_BASE_URL"]
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise SettingsError("BRAND_PUBLIC_BASE_URL must be a site root such as "
                            "https://brand.example.cn (no path): it is upper-cased in QR codes")
    labels.configure(app.config["SECRET_KEY"], base, app.config["LABEL_BATCH_MAX"])
    limiter.init_app(app)


def _public_limit():
    return current_app.config["PUBLIC_RATE_LIMIT"]


def _asks_for_position():
    """The page's first visit only asks the phone for its position: nothing is counted."""
    return (request.endpoint == "verify.page" and "geo" not in request.args
            and "lat" not in request.args)


def _exempt():
    return not current_app.config["RATELIMIT_ENABLED"] or _asks_for_position()


# One budget per client for the page and the API together.
public_limit = limiter.shared_limit(_public_limit, scope="label-verification",
                                    exempt_when=_exempt)


def network_of(address):
    """The client's network prefix, the only place known without coordinates."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return f"IP {ipaddress.ip_network(f'{ip}/{prefix}', strict=False)}"


def _place():
    return labels.make_place(request.args.get("lat"), request.args.get("lng"),
                             network_of(request.remote_addr))


def _time(value):
    return value.isoformat() + "Z" if value is not None else None


def trace_json(event):
    return {"kind": event.kind, "kind_name": _(trace.KINDS[event.kind]),
            "occurred_at": _time(event.occurred_at), "place": event.place, "note": event.note,
            "report_ref": event.report_ref, "batch_id": event.batch_id}


def verification_json(result):
    """What the page and the API say about a code."""
    body = {"status": result.status, "status_text": _(STATUS_TEXT[result.status]),
            "serial": None, "product": None, "grade": None, "enterprise": None,
            "licence": None, "trace": [], "scan_count": None, "first_verified_at": None,
            "first_verified_place": None, "suspect_reason": None, "revoked_because": None}
    if result.label is None:
        return body
    licence, label = result.licence, result.label
    body.update(
        serial=labels.format_serial(label.serial),
        product={"code": licence.product, "name": _(PRODUCTS.get(licence.product, ""))},
        grade={"code": licence.grade_code, "name": licence.grade.name_en
               if str(get_locale()) == "en" else licence.grade.name_zh},
        enterprise=licence.enterprise.name,
        licence={"number": licence.number, "status": licence.status,
                 "valid_from": licence.valid_from.isoformat() if licence.valid_from else None,
                 "valid_until": licence.valid_until.isoformat() if licence.valid_until else None},
        trace=[trace_json(event) for event in result.trace],
        scan_count=label.scan_count,
        first_verified_at=_time(label.first_scanned_at),
        first_verified_place=label.first_place,
        suspect_reason=_(labels.SUSPECT_REASONS[label.suspect_reason])
        if result.status == labels.SUSPECT and label.suspect_reason else None,
        revoked_because=_(REVOKED_BECAUSE[result.revoked_because])
        if result.revoked_because else None,
    )
    return body


@bp.route("/v/<path:code>")
@bp.route("/V/<path:code>")
@public_limit
def page(code):
    if _asks_for_position():
        # The page reloads with lat/lng, or with geo=0 when the phone gives no position.
        return render_template("verify_locate.html", code=code)
    result = labels.verify_code(code, _place())
    # The answer is read before the commit, which would expire what it reads.
    view = verification_json(result)
    if result.label is not None:
        view["first_verified_at_local"] = local_time(result.label.first_scanned_at,
                                                     "%Y-%m-%d %H:%M:%S")
        for item, event in zip(view["trace"], result.trace, strict=True):
            item["occurred_at_local"] = local_time(event.occurred_at)
    commit()
    return render_template("verify.html", v=view, code=code)


@bp.route("/api/v1/verify/<path:code>")
@public_limit
def api_verify(code):
    result = labels.verify_code(code, _place())
    answer = verification_json(result)
    commit()
    return answer
