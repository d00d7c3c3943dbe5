"""Public notices (公示): the list, one notice, the Atom feed and the JSON API (no login);
office staff publish announcements and corrections from a small form."""

import xml.etree.ElementTree as ET

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import notices
from engine.errors import N_, Forbidden, ValidationFailed
from web.hardening import DB_INT_MAX
from web.views_common import commit

bp = Blueprint("notices", __name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50
# The feed's elements are written without a prefix (Atom as the default namespace).
ET.register_namespace("", ATOM_NS)


def notice_json(notice):
    return {
        "id": notice.id,
        "number": notice.number,
        "kind": notice.kind,
        "title": notice.title,
        "body": notice.body,
        "published_at": notice.published_at.isoformat() + "Z",
        "instance_id": notice.instance_id,
        "enterprise_id": notice.enterprise_id,
        "corrects_id": notice.corrects_id,
        "url": url_for("notices.show", notice_id=notice.id, _external=True),
    }


@bp.route("/notices")
def index():
    return render_template("site/notices.html", notices=notices.list_notices(),
                           kinds=notices.KINDS, may_publish=_may_publish())


@bp.route("/notices/<int:notice_id>")
def show(notice_id):
    notice = notices.get_notice(notice_id)
    return render_template("site/notice.html", notice=notice, kinds=notices.KINDS,
                           corrections=notices.corrections_of(notice),
                           may_publish=_may_publish())


@bp.route("/api/v1/notices")
def api_list():
    kind = request.args.get("kind") or None
    if kind is not None and kind not in notices.KINDS:
        unknown = N_("未知类别")
        raise ValidationFailed("公示类别无效", fields={"kind": [unknown]})
    return {"items": [notice_json(n) for n in notices.list_notices(kind=kind)]}


@bp.route("/api/v1/notices/<int:notice_id>")
def api_show(notice_id):
    return notice_json(notices.get_notice(notice_id))


@bp.route("/notices.atom")
def feed():
    """An Atom feed (RFC 4287) of the newest notices, built with ElementTree so that every
    title and body is escaped."""
    listed = notices.list_notices(limit=FEED_SIZE)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    _text(root, "title", _("盈江县区域公共品牌 · 公示"))
    _text(root, "id", url_for("notices.index", _external=True))
    updated = listed[0].published_at if listed else None
    _text(root, "updated", _atom_time(updated) if updated else "1970-01-01T00:00:00Z")
    ET.SubElement(root, f"{{{ATOM_NS}}}link", href=url_for("notices.feed", _external=True),
                  rel="self")
    ET.SubElement(root, f"{{{ATOM_NS}}}link", href=url_for("notices.index", _external=True))
    author = ET.SubElement(root, f"{{{ATOM_NS}}}author")
    _text(author, "name", _("盈江县品牌管理办公室"))

    for notice in listed:
        link = url_for("notices.show", notice_id=notice.id, _external=True)
        entry = ET.SubElement(root, f"{{{ATOM_NS}}}entry")
        _text(entry, "title", notice.title)
        _text(entry, "id", link)
        _text(entry, "updated", _atom_time(notice.published_at))
        _text(entry, "published", _atom_time(notice.published_at))
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", href=link)
        ET.SubElement(entry, f"{{{ATOM_NS}}}category", term=notice.kind)
        _text(entry, "content", notice.body).set("type", "text")

    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, mimetype="application/atom+xml")


def _text(parent, tag, value):
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
    element.text = value
    return element


def _atom_time(value):
    return value.replace(microsecond=0).isoformat() + "Z"


# -- publishing (office staff) -----------------------------------------------------------------

def _may_publish():
    return current_user.is_authenticated and notices.may_publish(current_user)


@bp.route("/notices/new", methods=["GET", "POST"])
@login_required
def new():
    if not notices.may_publish(current_user):
        raise Forbidden("只有品牌管理办公室可以发布公示")
    corrects = _corrects_id()
    original = notices.get_notice(corrects) if corrects is not None else None
    values, errors = {}, {}

    if request.method == "POST":
        values = request.form
        try:
            notice = notices.publish_announcement(current_user, request.form.get("title"),
                                                  request.form.get("body"), corrects)
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("公示已发布：%(number)s", number=notice.number))
            return redirect(url_for("notices.show", notice_id=notice.id))

    return render_template("site/notice_new.html", original=original, values=values,
                           errors=errors), 422 if errors else 200


def _corrects_id():
    raw = request.values.get("corrects")
    if not raw:
        return None
    if not (raw.isdecimal() and int(raw) <= DB_INT_MAX):
        not_number = N_("应为数字")
        raise ValidationFailed("被更正的公示编号无效", fields={"corrects": [not_number]})
    return int(raw)
