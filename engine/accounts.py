"""Users, departments and passwords (argon2), and API tokens."""

import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from engine.db import session
from engine.errors import NotAuthenticated
from engine.models import Group, Membership, User

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()


def use_fast_hashing():
    """Cheap argon2 parameters for the test suite only; never called in demo or production."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _DUMMY_HASH = _hasher.hash("not a password")

GROUPS = [
    ("leadership", "品牌管理领导小组", "Brand leadership group"),
    ("office", "品牌管理办公室", "Brand office"),
    ("market", "市场开发部", "Market development"),
    ("quality", "质检部门", "Quality inspection"),
    ("finance", "财务部", "Finance"),
    ("protection", "品牌保护", "Brand protection"),
    ("general", "综合管理", "General affairs"),
    ("it", "信息化", "IT"),
    ("enterprise", "品牌授权企业", "Enterprises"),
    ("service", "客户服务中心", "Customer service"),
]


def ensure_groups():
    """Create the departments the diagrams' lanes name (idempotent)."""
    existing = set(session().scalars(select(Group.id)))
    for group_id, zh, en in GROUPS:
        if group_id not in existing:
            session().add(Group(id=group_id, name_zh=zh, name_en=en))
    session().flush()


def hash_password(password):
    return _hasher.hash(password)


def create_user(username, password, display_name, groups=(), leads=(), enterprise_id=None):
    user = User(username=username, display_name=display_name,
                password_hash=hash_password(password), enterprise_id=enterprise_id)
    for group_id in groups:
        user.memberships.append(Membership(group_id=group_id, is_lead=group_id in leads))
    session().add(user)
    session().flush()
    return user


def authenticate(username, password):
    """The active user with these credentials; raises NotAuthenticated otherwise."""
    user = session().scalars(select(User).where(User.username == str(username))).first()
    try:
        if user is None or not user.active:
            # Spend the same time as a real check so that timing does not reveal usernames.
            _hasher.verify(_DUMMY_HASH, str(password))
            raise NotAuthenticated("用户名或密码错误")
        _hasher.verify(user.password_hash, str(password))
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("用户名或密码错误") from None
    return user


_DUMMY_HASH = _hasher.hash("not a password")


def issue_token(user, secret):
    return URLSafeTimedSerializer(secret, salt="api-token").dumps(
        {"uid": user.id, "gen": user.token_generation})


def user_from_token(token, secret, max_age):
    try:
        payload = URLSafeTimedSerializer(secret, salt="api-token").loads(token, max_age=max_age)
    except SignatureExpired:
        raise NotAuthenticated("令牌已过期，请重新获取") from None
    except BadSignature:
        raise NotAuthenticated("令牌无效") from None
    user = session().get(User, payload.get("uid"))
    if user is None or not user.active or user.token_generation != payload.get("gen"):
        raise NotAuthenticated("令牌无效") from None
    return user
