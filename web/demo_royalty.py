"""Demo data for royalty collection: a processor licensed since the last period began.

Seeded only in demo mode (``make run``), so that the first run of the timer scheduler
opens last period's royalty case for ``ent-c`` at once; the test suite creates its own
payers with ``add_royalty_payer`` so that other tests' clocks never meet this one.
"""

from datetime import timedelta

from sqlalchemy import select

from engine import accounts, clock, labels, ledger, royalties
from engine.db import session
from engine.licensing import Licence
from engine.models import Enterprise, User

DEMO_PAYER = ("ent-c", "盈江县弄璋茶叶加工有限公司", "processor")
DEMO_LABELS = 2_000


def add_royalty_payer(username, name, kind="processor", valid_from=None, password="demo",
                      deposit_fen=1_000_000, label_quota=10_000, basis_points=None):
    """An admitted enterprise with its deposit paid, a login, and an active tea licence
    valid from ``valid_from`` (a date; today by default). Returns (enterprise, licence)."""
    now = clock.now()
    enterprise = Enterprise(name=name, kind=kind, status="admitted", admitted_at=now,
                            deposit_required_fen=deposit_fen, created_at=now)
    session().add(enterprise)
    session().flush()
    accounts.create_user(username, password, name, groups=["enterprise"],
                         enterprise_id=enterprise.id)
    finance = session().scalars(select(User).where(User.username == "finance")).first()
    ledger.pay_in(enterprise.id, deposit_fen, approved_by=finance.id if finance else None,
                  note="演示数据：期初缴纳")

    valid_from = valid_from or now.date()
    count = session().scalar(select(Licence.id).order_by(Licence.id.desc()).limit(1)) or 0
    licence = Licence(
        number=f"YJPP-DEMO-{count + 1:04d}", enterprise_id=enterprise.id, product="tea",
        grade_code="ordinary", base_location="盈江县弄璋镇茶园", area_centimu=50_000,
        yield_grams_per_mu=100_000, package_grams=250, label_quota=label_quota,
        status="active", valid_from=valid_from,
        valid_until=valid_from.replace(year=valid_from.year + 3) - timedelta(days=1),
        created_at=now, signed_at=now)
    if basis_points is not None:
        licence.royalty_basis_points = basis_points
    session().add(licence)
    session().flush()
    return enterprise, licence


def seed_royalty_demo():
    """``ent-c``: licensed since the start of the last ended period, with labels issued in
    it (the batch is dated back to the period's middle, as if issued then). Idempotent."""
    username, name, kind = DEMO_PAYER
    if session().scalar(select(User.id).where(User.username == username)) is not None:
        return
    start, end = royalties.last_ended_period()
    _enterprise, licence = add_royalty_payer(username, name, kind, valid_from=start)
    market = session().scalars(select(User).where(User.username == "market")).first()
    batch = labels.issue_label_batch(licence, DEMO_LABELS, market)
    batch.created_at = royalties.local_midnight(start + (end - start) / 2)
    session().flush()
