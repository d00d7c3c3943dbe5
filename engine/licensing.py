"""Licences (品牌授权): quality grades and their standards, certificates, and the licence itself.

The label quota of a licence is bounded by its declared production: area (in
hundredths of a mu) x yield (grams per mu) / package size (grams). The bound is
checked here and again by a CHECK constraint, so no code path can exceed it.
Quantities are stored as integers in small units to keep the arithmetic exact.
"""

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine import clock
from engine.db import Base, session
from engine.errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from engine.ledger import lock_enterprise
from engine.models import Enterprise
from engine.services import field_check, service_operation, start_guard

logger = logging.getLogger(__name__)

GRADES = [
    ("gi", "地理标志", "Geographical indication"),
    ("organic", "有机", "Organic"),
    ("green", "绿色", "Green food"),
    ("pollution_free", "无公害", "Pollution-free"),
    ("ordinary", "普通", "Ordinary"),
]
# What DOMAIN.md lists for the geographical-indication standard; the others start empty.
GI_DIMENSIONS = ["产地范围", "甜度", "外观", "大小", "采收时间", "包装", "允许使用的农业投入品",
                 "投入品用量", "投入品使用次数", "农药残留"]
PRODUCTS = {"tea": "茶叶", "black_cardamom": "草果", "macadamia": "澳洲坚果", "potato": "洋芋",
            "sugar_cane": "甘蔗"}
# Grades that need a 三品一标 certificate; ordinary products need none.
CERTIFIED_GRADES = {"gi", "organic", "green", "pollution_free"}
DEFAULT_ROYALTY_BASIS_POINTS = 25   # 0.25 % of sales, the plan's rate
LICENCE_YEARS = 3


class Grade(Base):
    __tablename__ = "grades"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))

    dimensions: Mapped[list["QualityDimension"]] = relationship(
        order_by="QualityDimension.position", cascade="all, delete-orphan", lazy="selectin")


class QualityDimension(Base):
    """One dimension of a grade's quality standard, edited by office staff."""

    __tablename__ = "quality_dimensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    requirement: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Certificate(Base):
    """A 三品一标 certificate: number, holder, product, scale, validity."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    holder: Mapped[str] = mapped_column(String(200))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    product: Mapped[str] = mapped_column(String(32))
    scale: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)

    __table_args__ = (CheckConstraint("valid_until >= valid_from", name="validity"),)

    def valid_on(self, day):
        return self.valid_from <= day <= self.valid_until


class Licence(Base):
    """A licence to sell one product at one grade under the brand; its quota bounds labels."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    product: Mapped[str] = mapped_column(String(32))
    grade_code: Mapped[str] = mapped_column(ForeignKey("grades.code"))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    base_location: Mapped[str] = mapped_column(String(200))
    area_centimu: Mapped[int] = mapped_column(BigInteger)
    yield_grams_per_mu: Mapped[int] = mapped_column(BigInteger)
    package_grams: Mapped[int] = mapped_column(BigInteger)
    label_quota: Mapped[int] = mapped_column(BigInteger, default=0)
    labels_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    royalty_basis_points: Mapped[int] = mapped_column(Integer,
                                                      default=DEFAULT_ROYALTY_BASIS_POINTS)
    # pending (under review), active, rejected, revoked, expired
    status: Mapped[str] = mapped_column(String(16), default="pending")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    enterprise: Mapped[Enterprise] = relationship()
    grade: Mapped[Grade] = relationship()
    certificate: Mapped[Certificate | None] = relationship()

    __table_args__ = (
        CheckConstraint("area_centimu > 0 AND yield_grams_per_mu > 0 AND package_grams > 0",
                        name="positive_base"),
        # The quota never exceeds what the base can grow: quota x package <= area x yield.
        CheckConstraint("label_quota * package_grams * 100 <= area_centimu * yield_grams_per_mu",
                        name="quota_within_production"),
        CheckConstraint("labels_issued >= 0 AND labels_issued <= label_quota",
                        name="issued_within_quota"),
        CheckConstraint("status in ('pending', 'active', 'rejected', 'revoked', 'expired')",
                        name="status"),
        UniqueConstraint("instance_id"),
    )

    @property
    def max_quota(self):
        return production_bound(self.area_centimu, self.yield_grams_per_mu, self.package_grams)

    @property
    def quota_left(self):
        return self.label_quota - self.labels_issued

    def is_active_on(self, day):
        return (self.status == "active" and self.valid_from is not None
                and self.valid_from <= day <= self.valid_until)


def production_bound(area_centimu, yield_grams_per_mu, package_grams):
    """How many packages the declared base can fill in one licence period."""
    return (area_centimu * yield_grams_per_mu) // (package_grams * 100)


# -- grades and standards (edited by office staff) --------------------------------------------

def ensure_grades():
    existing = {g.code for g in session().scalars(select(Grade))}
    for code, zh, en in GRADES:
        if code not in existing:
            grade = Grade(code=code, name_zh=zh, name_en=en)
            if code == "gi":
                grade.dimensions = [QualityDimension(name=name, position=i)
                                    for i, name in enumerate(GI_DIMENSIONS)]
            session().add(grade)
    session().flush()


def list_grades():
    """The grades in the plan's order (地理标志 first, 普通 last)."""
    order = {code: i for i, (code, _zh, _en) in enumerate(GRADES)}
    return sorted(session().scalars(select(Grade)), key=lambda g: order.get(g.code, len(order)))


def get_grade(code):
    grade = session().get(Grade, code)
    if grade is None:
        raise NotFound("质量等级不存在", grade=code)
    return grade


STANDARD_EDITORS = frozenset({"office"})


def check_may_edit_standards(user):
    """Only the brand office defines the grades' quality standards."""
    if user is None or user.enterprise_id is not None or not user.group_ids & STANDARD_EDITORS:
        raise Forbidden("只有品牌管理办公室可以修改质量等级标准")


def get_dimension(dimension_id):
    dimension = session().get(QualityDimension, dimension_id)
    if dimension is None:
        raise NotFound("质量标准维度不存在", dimension_id=dimension_id)
    return dimension


def add_dimension(grade_code, name, requirement=""):
    grade = get_grade(grade_code)
    name = (name or "").strip()
    if not name or len(name) > 100:
        problem = N_("请填写 1-100 字的名称")
        raise ValidationFailed("质量标准维度无效", fields={"name": [problem]})
    # After the last one, even when an earlier one was removed (positions are not renumbered).
    position = max((d.position for d in grade.dimensions), default=-1) + 1
    dimension = QualityDimension(name=name, requirement=(requirement or "")[:2000],
                                 position=position)
    grade.dimensions.append(dimension)
    session().flush()
    return dimension


def update_dimension(dimension_id, name, requirement):
    dimension = get_dimension(dimension_id)
    name = (name or "").strip()
    if not name or len(name) > 100:
        problem = N_("请填写 1-100 字的名称")
        raise ValidationFailed("质量标准维度无效", fields={"name": [problem]})
    dimension.name = name
    dimension.requirement = (requirement or "")[:2000]
    session().flush()
    return dimension


def remove_dimension(dimension_id):
    dimension = get_dimension(dimension_id)
    grade = get_grade(dimension.grade_code)
    # Out of the grade's list: the orphan is deleted, and the list read next is right.
    grade.dimensions.remove(dimension)
    session().flush()
    return grade


# -- certificates ------------------------------------------------------------------------------

CERTIFICATE_RECORDERS = frozenset({"quality"})
# Quality records them; market fixes quotas and the office signs on them; leadership oversees.
CERTIFICATE_READERS = CERTIFICATE_RECORDERS | {"market", "office", "leadership"}
CERTIFICATE_STATES = {"valid": N_("有效"), "expired": N_("已过期"), "pending": N_("尚未生效")}


def check_may_record_certificates(user):
    if user is None or user.enterprise_id is not None \
            or not user.group_ids & CERTIFICATE_RECORDERS:
        raise Forbidden("只有质检部门可以登记三品一标证书")


def may_record_certificates(user):
    return user.enterprise_id is None and bool(user.group_ids & CERTIFICATE_RECORDERS)


def certificate_scope(user, enterprise_id=None):
    """Whose certificates ``user`` may list: an enterprise only its own (403 when it asks for
    another's), certificate staff any (``enterprise_id`` or all); anyone else none (403)."""
    if user.enterprise_id is not None:
        if enterprise_id not in (None, user.enterprise_id):
            raise Forbidden("只能查看本企业的证书")
        return user.enterprise_id
    if not user.group_ids & CERTIFICATE_READERS:
        raise Forbidden("没有权限查看三品一标证书")
    return enterprise_id


def certificate_state(certificate, today=None):
    """``valid``, ``expired`` or ``pending`` (not yet valid) on ``today``."""
    today = today or clock.now().date()
    if today > certificate.valid_until:
        return "expired"
    if today < certificate.valid_from:
        return "pending"
    return "valid"


def _text(value):
    """Typed text, stripped; anything else (a number, a list from JSON) counts as missing."""
    return value.strip() if isinstance(value, str) else ""


def _date(value):
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(_text(value))
    except ValueError:
        return None


def record_certificate(number, grade_code, holder, product, scale, valid_from, valid_until,
                       enterprise_id=None):
    """Record a 三品一标 certificate (quality staff). Dates may be ``date`` or ISO strings;
    every problem is reported on its field at once (422)."""
    number, holder, scale = _text(number), _text(holder), _text(scale)
    grade_code, product = _text(grade_code), _text(product)
    valid_from, valid_until = _date(valid_from), _date(valid_until)
    required = N_("必填")
    errors = {}
    if not number or len(number) > 64:
        errors["number"] = [N_("请填写 1-64 字的证书编号")]
    elif session().scalar(select(Certificate.id).where(Certificate.number == number)):
        errors["number"] = [N_("该证书编号已登记")]
    if grade_code not in {code for code, _zh, _en in GRADES}:
        errors["grade"] = [N_("请从列表中选择")]
    elif grade_code not in CERTIFIED_GRADES:
        errors["grade"] = [N_("普通等级无需证书")]
    if not holder or len(holder) > 200:
        errors["holder"] = [required] if not holder else [N_("不超过 200 字")]
    if product not in PRODUCTS:
        errors["product"] = [N_("未知产品")]
    if len(scale) > 200:
        errors["scale"] = [N_("不超过 200 字")]
    if valid_from is None:
        errors["valid_from"] = [N_("应为日期，如 2026-01-31")]
    if valid_until is None:
        errors["valid_until"] = [N_("应为日期，如 2026-01-31")]
    elif valid_from is not None and valid_until < valid_from:
        errors["valid_until"] = [N_("有效期截止日早于起始日")]
    if enterprise_id not in (None, ""):
        if isinstance(enterprise_id, str) and enterprise_id.strip().isdecimal():
            enterprise_id = int(enterprise_id)
        known = isinstance(enterprise_id, int) and not isinstance(enterprise_id, bool) \
            and 0 < enterprise_id <= 2**31 - 1 and session().get(Enterprise, enterprise_id)
        if not known:
            errors["enterprise_id"] = [N_("不是已登记企业的编号")]
    else:
        enterprise_id = None
    if errors:
        raise ValidationFailed("证书信息无效", fields=errors)

    certificate = Certificate(number=number, grade_code=grade_code, holder=holder,
                              product=product, scale=scale, valid_from=valid_from,
                              valid_until=valid_until, enterprise_id=enterprise_id)
    session().add(certificate)
    session().flush()
    logger.info("certificate %s (%s, %s) recorded, valid %s to %s", number, grade_code, product,
                valid_from, valid_until)
    return certificate


def list_certificates(enterprise_id=None):
    """Certificates, latest expiry first; with ``enterprise_id``, only that enterprise's."""
    query = select(Certificate).order_by(Certificate.valid_until.desc(), Certificate.id.desc())
    if enterprise_id is not None:
        query = query.where(Certificate.enterprise_id == enterprise_id)
    return session().scalars(query).all()


def standard_for_task(task):
    """What quality staff check at the licence application's verification task: the grade
    applied for with its standard's dimensions, and the certificate with its state today.
    None for any other task."""
    if task.form != "licence_quality":
        return None
    licence = session().scalars(select(Licence).where(
        Licence.instance_id == task.instance_id)).first()
    if licence is None:
        return None
    certificate = licence.certificate
    return {"grade": licence.grade, "dimensions": list(licence.grade.dimensions),
            "product": PRODUCTS.get(licence.product, licence.product),
            "certificate": certificate,
            "certificate_state": certificate_state(certificate) if certificate else None}


# -- the licence grant process's effects ------------------------------------------------------

def _step():
    from engine.runtime import current_step

    step = current_step.get()
    if step is None or step.instance.enterprise_id is None:
        raise ValidationFailed("授权操作只能用于企业的案件")
    return step


def _licence_of(step):
    licence = session().scalars(select(Licence).where(
        Licence.instance_id == step.instance.id)).first()
    if licence is None:
        raise NotFound("此案件没有对应的授权申请")
    return licence


def _to_units(value, scale, field):
    """A decimal string ("12.5") as an integer count of 1/scale units, refusing <= 0."""
    try:
        number = Decimal(str(value)) * scale
    except ArithmeticError:
        number = Decimal(0)
    if number <= 0 or number != number.to_integral_value():
        raise ValidationFailed("生产基地信息无效", fields={field: [N_("应为正数")]})
    return int(number)


@start_guard("licence_grant")
def check_can_apply_for_licence(user, enterprise, data):
    """Only an admitted enterprise may apply; a certified grade needs a valid certificate."""
    if enterprise is None:
        raise Forbidden("只有企业用户可以申请品牌授权")
    if enterprise.status != "admitted":
        raise Conflict("企业尚未准入，不能申请品牌授权")
    _refuse_duplicate_licence(enterprise, data)
    _valid_certificate(enterprise, data)


def _refuse_duplicate_licence(enterprise, data):
    """One licence per product and grade: refuse while one is under review or in force
    (a licence past its validity may be applied for again).

    The enterprise's row is locked first, so two applications sent at once cannot both
    find none: the second waits, then sees the first one's pending licence.
    """
    lock_enterprise(enterprise.id)
    today = clock.now().date()
    held = session().scalars(select(Licence).where(
        Licence.enterprise_id == enterprise.id, Licence.product == data.get("product"),
        Licence.grade_code == data.get("grade"),
        Licence.status.in_(("pending", "active")))).all()
    for licence in held:
        if licence.status == "pending":
            raise Conflict("该企业已有同一产品、同一等级正在审核的品牌授权申请",
                           licence_id=licence.id, instance_id=licence.instance_id)
        if licence.valid_until is None or licence.valid_until >= today:
            raise Conflict("该企业已持有同一产品、同一等级的有效品牌授权，无需重复申请",
                           licence_id=licence.id)


def _valid_certificate(enterprise, data):
    grade = data.get("grade")
    if grade not in CERTIFIED_GRADES:
        return None
    number = (data.get("certificate_number") or "").strip()
    certificate = session().scalars(select(Certificate).where(
        Certificate.number == number)).first() if number else None
    today = clock.now().date()
    if certificate is None:
        problem = N_("未找到该证书，请先由质检部门登记")
    elif certificate.grade_code != grade or certificate.product != data.get("product"):
        problem = N_("证书的等级或产品与申请不符")
    elif certificate.enterprise_id not in (None, enterprise.id):
        problem = N_("证书持有人不是本企业")
    elif not certificate.valid_on(today):
        problem = N_("证书已过期或尚未生效，不能作为授权依据")
    else:
        return certificate
    raise ValidationFailed("证书不能作为授权依据", fields={"certificate_number": [problem]})


@service_operation
def open_licence_application(task_data, **_params):
    """Record the application as a pending licence with its declared production base."""
    step = _step()
    enterprise = session().get(Enterprise, step.instance.enterprise_id)
    certificate = _valid_certificate(enterprise, task_data)
    licence = Licence(
        enterprise_id=enterprise.id, instance_id=step.instance.id,
        product=task_data["product"], grade_code=task_data["grade"],
        certificate_id=certificate.id if certificate else None,
        base_location=task_data.get("base_location") or "",
        area_centimu=_to_units(task_data["base_area_mu"], 100, "base_area_mu"),
        yield_grams_per_mu=_to_units(task_data["yield_kg_per_mu"], 1000, "yield_kg_per_mu"),
        package_grams=_to_units(task_data["package_kg"], 1000, "package_kg"),
        status="pending", created_at=clock.now())
    session().add(licence)
    session().flush()
    step.record("licence_applied", licence_id=licence.id, max_quota=licence.max_quota)
    return licence.max_quota


# Said on the field of the form in front of the person refused (fix_quota, sign).
CERTIFICATE_LAPSED = {
    "label_quota": N_("支撑本申请的三品一标证书已过期，不能核定配额"),
    "sign_decision": N_("支撑本申请的三品一标证书已过期，不能签发，只能不予签发"),
}


def check_certificate_still_valid(licence, field, today=None):
    """A certificate may lapse while the application waits: refuse the step when the one
    that backs ``licence`` is no longer valid today (422 on ``field``)."""
    certificate = licence.certificate
    today = today or clock.now().date()
    if certificate is None or certificate.valid_on(today):
        return
    raise ValidationFailed("证书已过期，不能作为授权依据",
                           fields={field: [CERTIFICATE_LAPSED[field]]},
                           certificate_number=certificate.number,
                           certificate_valid_until=certificate.valid_until.isoformat())


QUOTA_TOO_LARGE = N_("标签配额须大于 0 且不超过按产量核定的上限")


def _quota_fits(licence, quota):
    return 0 < quota <= licence.max_quota


@field_check("licence_quota")
def quota_field_problems(task, values):
    """The quota task's service checks on its form: the production bound and the
    certificate (``{field: [msgid]}``)."""
    if values.get("label_quota") is None:
        return {}
    licence = session().scalars(select(Licence).where(
        Licence.instance_id == task.instance_id)).first()
    if licence is None:
        return {}
    try:
        check_certificate_still_valid(licence, "label_quota")
    except ValidationFailed as exc:
        return exc.fields
    if not _quota_fits(licence, int(values["label_quota"])):
        return {"label_quota": [QUOTA_TOO_LARGE]}
    return {}


@service_operation
def set_label_quota(task_data, **_params):
    """The market department fixes the quota; it can never exceed the production bound,
    and the certificate behind the application must still be valid."""
    step = _step()
    licence = _licence_of(step)
    check_certificate_still_valid(licence, "label_quota")
    quota = int(task_data["label_quota"])
    if not _quota_fits(licence, quota):
        raise ValidationFailed("标签配额超过生产能力", fields={"label_quota": [QUOTA_TOO_LARGE]},
                               max_quota=licence.max_quota)
    basis_points = task_data.get("royalty_basis_points")
    licence.label_quota = quota
    if basis_points is not None:
        licence.royalty_basis_points = int(basis_points)
    session().flush()
    step.record("quota_set", label_quota=quota, max_quota=licence.max_quota)
    return quota


@service_operation
def activate_licence(task_data, **_params):
    """The office signed: number the licence and make it active for its validity period,
    which ends no later than its certificate (refused if that has lapsed meanwhile)."""
    step = _step()
    licence = _licence_of(step)
    now = clock.now()
    check_certificate_still_valid(licence, "sign_decision", now.date())
    year = now.year
    count = session().scalar(select(func.count(Licence.id)).where(
        Licence.number.like(f"YJPP-{year}-%")))
    licence.number = f"YJPP-{year}-{count + 1:04d}"
    licence.status = "active"
    licence.signed_at = now
    licence.valid_from = now.date()
    licence.valid_until = now.date().replace(year=year + LICENCE_YEARS) - timedelta(days=1)
    if licence.certificate and licence.certificate.valid_until < licence.valid_until:
        # A licence never outlives the certificate that backs it.
        licence.valid_until = licence.certificate.valid_until
    if licence.valid_until < licence.valid_from:
        raise ValidationFailed("授权有效期无效", fields={"sign_decision": [
            CERTIFICATE_LAPSED["sign_decision"]]})
    session().flush()
    step.record("licence_active", number=licence.number, quota=licence.label_quota)
    return licence.number


@service_operation
def reject_licence(task_data, reason=None, **_params):
    step = _step()
    licence = _licence_of(step)
    licence.status = "rejected"
    step.record("licence_rejected", reason=str(reason or "")[:2000])
    return "rejected"


# -- reading ----------------------------------------------------------------------------------

def get_licence(licence_id):
    licence = session().get(Licence, licence_id)
    if licence is None:
        raise NotFound("授权不存在", licence_id=licence_id)
    return licence


def list_licences(enterprise_id=None, status=None):
    query = select(Licence).order_by(Licence.id.desc())
    if enterprise_id is not None:
        query = query.where(Licence.enterprise_id == enterprise_id)
    if status:
        query = query.where(Licence.status == status)
    return session().scalars(query).all()


def licence_visible_to(user, licence):
    if user.enterprise_id is not None:
        return licence.enterprise_id == user.enterprise_id
    return True
