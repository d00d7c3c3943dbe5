"""The brand's public site: story pages written by office staff, retail outlets (零售网点)
kept by the market department, and the directory of licensed enterprises.

Page bodies are plain text; a blank line separates paragraphs. Nothing here is HTML:
the templates escape every paragraph.
"""

import logging
import re
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Forbidden, NotFound, ValidationFailed
from engine.licensing import PRODUCTS, Licence
from engine.models import Enterprise

logger = logging.getLogger(__name__)

PAGE_EDITORS = frozenset({"office"})
OUTLET_KEEPERS = frozenset({"market"})
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class ContentPage(Base):
    """A page of the brand's story, addressed by its slug (``/brand/pages/<slug>``)."""

    __tablename__ = "content_pages"

    slug: Mapped[str] = mapped_column(String(48), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RetailOutlet(Base):
    """A shop selling brand products, where online orders can be picked up (O2O)."""

    __tablename__ = "retail_outlets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    # Product codes of engine.licensing.PRODUCTS, comma-separated.
    products: Mapped[str] = mapped_column(String(200), default="")
    pickup_note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    enterprise: Mapped[Enterprise | None] = relationship()

    @property
    def product_codes(self):
        return [code for code in (self.products or "").split(",") if code]

    @property
    def product_names(self):
        return [PRODUCTS[code] for code in self.product_codes if code in PRODUCTS]


def _is_staff_in(user, groups):
    return user is not None and user.enterprise_id is None and bool(user.group_ids & groups)


def may_edit_pages(user):
    return _is_staff_in(user, PAGE_EDITORS)


def may_keep_outlets(user):
    return _is_staff_in(user, OUTLET_KEEPERS)


# -- story pages -------------------------------------------------------------------------------

def list_pages():
    return session().scalars(select(ContentPage).order_by(ContentPage.position,
                                                          ContentPage.slug)).all()


def get_page(slug):
    page = session().get(ContentPage, slug) if SLUG.match(slug or "") else None
    if page is None:
        raise NotFound("页面不存在", slug=slug)
    return page


def save_page(slug, title, body, actor):
    """Create or replace a story page (office staff only)."""
    if not may_edit_pages(actor):
        raise Forbidden("只有品牌管理办公室可以编辑门户内容")
    title = (title or "").strip()
    body = (body or "").replace("\r\n", "\n").strip()
    errors = {}
    if not SLUG.match(slug or ""):
        bad_slug = N_("只能使用小写字母、数字和连字符，最多 48 个字符")
        errors["slug"] = [bad_slug]
    if not title or len(title) > 200:
        bad_title = N_("请填写 1-200 字的标题")
        errors["title"] = [bad_title]
    if len(body) > 20_000:
        too_long = N_("正文不超过 20000 字")
        errors["body"] = [too_long]
    if errors:
        raise ValidationFailed("页面内容无效", fields=errors)

    page = session().get(ContentPage, slug)
    if page is None:
        page = ContentPage(slug=slug, position=len(list_pages()))
        session().add(page)
    page.title, page.body = title, body
    page.updated_at, page.updated_by = clock.now(), getattr(actor, "id", None)
    session().flush()
    logger.info("content page %s saved by user %s", slug, getattr(actor, "id", None))
    return page


# -- retail outlets ----------------------------------------------------------------------------

def list_outlets(include_inactive=False):
    query = select(RetailOutlet).order_by(RetailOutlet.name)
    if not include_inactive:
        query = query.where(RetailOutlet.active.is_(True))
    return session().scalars(query).all()


def get_outlet(outlet_id):
    outlet = session().get(RetailOutlet, outlet_id)
    if outlet is None:
        raise NotFound("零售网点不存在", outlet_id=outlet_id)
    return outlet


def _enterprise_id(value, errors):
    if value in (None, ""):
        return None
    try:
        enterprise = session().get(Enterprise, int(value))
    except (TypeError, ValueError):
        enterprise = None
    if enterprise is None:
        unknown = N_("企业编号不存在")
        errors["enterprise_id"] = [unknown]
        return None
    return enterprise.id


def save_outlet(actor, values, outlet=None):
    """Add an outlet, or change one (``outlet``); market staff only."""
    if not may_keep_outlets(actor):
        raise Forbidden("只有市场开发部可以维护零售网点")
    name = (values.get("name") or "").strip()
    address = (values.get("address") or "").strip()
    products = [code for code in values.get("products") or [] if code]
    errors = {}
    if not name or len(name) > 200:
        bad_name = N_("请填写 1-200 字的名称")
        errors["name"] = [bad_name]
    if not address or len(address) > 300:
        bad_address = N_("请填写 1-300 字的地址")
        errors["address"] = [bad_address]
    if any(code not in PRODUCTS for code in products):
        unknown = N_("未知产品")
        errors["products"] = [unknown]
    enterprise_id = _enterprise_id(values.get("enterprise_id"), errors)
    note = (values.get("pickup_note") or "").strip()
    if len(note) > 2000:
        too_long = N_("不超过 2000 字")
        errors["pickup_note"] = [too_long]
    if errors:
        raise ValidationFailed("零售网点信息无效", fields=errors)

    if outlet is None:
        outlet = RetailOutlet()
        session().add(outlet)
    outlet.name, outlet.address, outlet.enterprise_id = name, address, enterprise_id
    outlet.products = ",".join(code for code in PRODUCTS if code in products)
    outlet.pickup_note = note
    outlet.active = bool(values.get("active", True))
    outlet.updated_at, outlet.updated_by = clock.now(), getattr(actor, "id", None)
    session().flush()
    return outlet


# -- the directory -----------------------------------------------------------------------------

def directory(today=None):
    """{enterprise: [licence, ...]} of licences active today, enterprises by name."""
    today = today or clock.now().date()
    licences = session().scalars(
        select(Licence).join(Enterprise, Enterprise.id == Licence.enterprise_id)
        .where(Licence.status == "active", Licence.valid_from <= today,
               Licence.valid_until >= today, Enterprise.status == "admitted")
        .order_by(Enterprise.name, Licence.product)).all()
    listed = OrderedDict()
    for licence in licences:
        listed.setdefault(licence.enterprise, []).append(licence)
    return listed
