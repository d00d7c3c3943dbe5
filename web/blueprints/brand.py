"""The brand's public portal (no login): home, story pages, licensed enterprises, retail
outlets, the verify entry; office staff edit story pages, market staff keep outlets."""

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine import brandsite, notices
from engine.errors import Forbidden, ValidationFailed
from engine.licensing import PRODUCTS
from web.views_common import commit

bp = Blueprint("brand", __name__, url_prefix="/brand")

# What a typed label code may look like before it is handed to /v/<code>.
CODE = re.compile(r"^[A-Za-z0-9_-]{1,160}$")


def _user():
    return current_user if current_user.is_authenticated else None


@bp.route("/")
def home():
    return render_template("site/home.html", pages=brandsite.list_pages(),
                           notices=notices.list_notices(limit=5), products=PRODUCTS,
                           kinds=notices.KINDS)


@bp.route("/pages/<slug>")
def page(slug):
    return render_template("site/page.html", page=brandsite.get_page(slug),
                           may_edit=brandsite.may_edit_pages(_user()))


@bp.route("/pages/<slug>/edit", methods=["GET", "POST"])
@bp.route("/pages/new", methods=["GET", "POST"], defaults={"slug": None})
@login_required
def edit_page(slug):
    if not brandsite.may_edit_pages(current_user):
        raise Forbidden("只有品牌管理办公室可以编辑门户内容")
    existing = brandsite.get_page(slug) if slug else None
    values = {"slug": slug or "", "title": existing.title if existing else "",
              "body": existing.body if existing else ""}
    errors = {}

    if request.method == "POST":
        values = {"slug": slug or request.form.get("slug", "").strip(),
                  "title": request.form.get("title", ""), "body": request.form.get("body", "")}
        try:
            saved = brandsite.save_page(values["slug"], values["title"], values["body"],
                                        current_user)
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("页面已保存"))
            return redirect(url_for("brand.page", slug=saved.slug))

    return render_template("site/page_edit.html", values=values, existing=existing,
                           errors=errors), 422 if errors else 200


@bp.route("/enterprises")
def enterprises():
    return render_template("site/enterprises.html", directory=brandsite.directory(),
                           products=PRODUCTS)


@bp.route("/outlets")
def outlets():
    return render_template("site/outlets.html", outlets=brandsite.list_outlets(),
                           may_keep=brandsite.may_keep_outlets(_user()))


@bp.route("/outlets/new", methods=["GET", "POST"], defaults={"outlet_id": None})
@bp.route("/outlets/<int:outlet_id>/edit", methods=["GET", "POST"])
@login_required
def edit_outlet(outlet_id):
    if not brandsite.may_keep_outlets(current_user):
        raise Forbidden("只有市场开发部可以维护零售网点")
    outlet = brandsite.get_outlet(outlet_id) if outlet_id else None
    values = _outlet_values(outlet)
    errors = {}

    if request.method == "POST":
        values = {"name": request.form.get("name"), "address": request.form.get("address"),
                  "enterprise_id": request.form.get("enterprise_id"),
                  "products": request.form.getlist("products"),
                  "pickup_note": request.form.get("pickup_note"),
                  "active": request.form.get("active") == "on"}
        try:
            brandsite.save_outlet(current_user, values, outlet)
            commit()
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            flash(_("零售网点已保存"))
            return redirect(url_for("brand.outlets"))

    return render_template("site/outlet_edit.html", values=values, outlet=outlet,
                           errors=errors, products=PRODUCTS), 422 if errors else 200


def _outlet_values(outlet):
    if outlet is None:
        return {"products": [], "active": True}
    return {"name": outlet.name, "address": outlet.address,
            "enterprise_id": outlet.enterprise_id or "", "products": outlet.product_codes,
            "pickup_note": outlet.pickup_note, "active": outlet.active}


@bp.route("/verify")
def verify():
    """The typed-code entry: a well-formed code goes to the verify page, anything else
    is asked again."""
    code = (request.args.get("code") or "").strip()
    if code and CODE.match(code):
        return redirect(url_for("verify.page", code=code))
    error = _("请输入标签上的防伪码（字母、数字）") if code else None
    return render_template("site/verify_entry.html", error=error,
                           code=code), 422 if error else 200
