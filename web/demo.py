"""Demo data: one user per department, two enterprises; password ``demo`` for all."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from engine import accounts, brandsite, clock, ledger, licensing
from engine.db import session
from engine.models import Enterprise, User
from web.extensions import db

DEMO_PASSWORD = "demo"
DEPARTMENTS = ("market", "quality", "finance", "protection", "leadership", "office", "service",
               "it", "general")
ENTERPRISES = (("ent-a", "盈江县芒允茶业有限公司", "processor"),
               ("ent-b", "盈江县铜壁关草果农民专业合作社", "cooperative"))


def seed_demo():
    """Create what is missing (idempotent); returns lines describing the logins.

    ``ent-a`` starts unadmitted (to walk admission review); ``ent-b`` is already admitted,
    with its deposit paid and a green-food certificate, ready to apply for a licence.
    """
    accounts.ensure_groups()
    licensing.ensure_grades()
    existing = set(session().scalars(select(User.username)))
    for group_id in DEPARTMENTS:
        if group_id not in existing:
            name = dict((g, zh) for g, zh, _en in accounts.GROUPS)[group_id]
            accounts.create_user(group_id, DEMO_PASSWORD, f"{name}（演示）", groups=[group_id],
                                 leads=[group_id])
    for username, name, kind in ENTERPRISES:
        if username not in existing:
            enterprise = Enterprise(name=name, kind=kind, status="registered",
                                    created_at=clock.now())
            session().add(enterprise)
            session().flush()
            accounts.create_user(username, DEMO_PASSWORD, name, groups=["enterprise"],
                                 enterprise_id=enterprise.id)
            if username == "ent-b":
                _admit_for_demo(enterprise)
    _portal_content()
    if current_app.config["MODE"] == "demo":
        # Not in tests: a payer whose periods other tests' clocks would open.
        from web.demo_royalty import seed_royalty_demo

        seed_royalty_demo()
        from web.demo_inspection import seed_inspection_demo

        seed_inspection_demo()
    db.session.commit()
    return [f"demo logins (password '{DEMO_PASSWORD}'): {', '.join(demo_logins())}"]


def demo_logins():
    """Every demo login that exists, departments first: ``ent-c`` only in demo mode."""
    wanted = DEPARTMENTS + tuple(u for u, _n, _k in ENTERPRISES) + ("ent-c",)
    existing = set(session().scalars(select(User.username).where(User.username.in_(wanted))))
    return [username for username in wanted if username in existing]


def _admit_for_demo(enterprise):
    now = clock.now()
    enterprise.status = "admitted"
    enterprise.admitted_at = now
    enterprise.deposit_required_fen = 1_000_000
    finance = session().scalars(select(User).where(User.username == "finance")).first()
    # An opening balance, as if paid before the system: no case, approved by finance.
    ledger.pay_in(enterprise.id, 1_000_000, approved_by=finance.id if finance else None,
                  note="演示数据：期初缴纳")
    licensing.record_certificate(
        "LB-53-2612-0001", "green", enterprise.name, "black_cardamom", "草果基地 500 亩",
        (now - timedelta(days=365)).date(), (now + timedelta(days=730)).date(),
        enterprise_id=enterprise.id)


BRAND_STORY = """盈江县地处云南西部，气候温润，雨量充沛，出产茶叶、草果、澳洲坚果、洋芋和甘蔗。

盈江县区域公共品牌由县品牌管理办公室统一管理。只有达到准入标准的企业才能获得品牌授权，
每一件授权产品都贴有不可伪造的防伪标签，扫码即可查验真伪和产品追溯信息。

品牌办公室对质量、假冒和经营行为实行监督，严重损害品牌的企业将被强制清退并公示。"""

DEMO_OUTLETS = (
    ("盈江县城旗舰店", "盈江县平原镇允燕路 88 号", ("tea", "black_cardamom", "macadamia"),
     "线上下单后凭取货码到店自提，营业时间 9:00-21:00。"),
    ("铜壁关乡服务点", "盈江县铜壁关乡集镇中心街 12 号", ("black_cardamom",),
     "草果现货，下单后次日可取。"),
)


def _portal_content():
    """A story page and two retail outlets for the public portal (idempotent)."""
    if session().get(brandsite.ContentPage, "story") is None:
        session().add(brandsite.ContentPage(slug="story", title="品牌故事", body=BRAND_STORY,
                                            position=0, updated_at=clock.now()))
    if not brandsite.list_outlets(include_inactive=True):
        for name, address, products, note in DEMO_OUTLETS:
            session().add(brandsite.RetailOutlet(
                name=name, address=address, products=",".join(products), pickup_note=note,
                active=True, updated_at=clock.now()))
    session().flush()
