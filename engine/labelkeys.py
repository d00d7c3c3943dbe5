"""Label signing keys: Ed25519 key pairs with a one-byte id, sealed at rest.

The newest key signs new labels. Rotating adds a newer key and older keys keep
verifying the labels they signed; retiring a key makes its labels verify as
revoked. A private key is stored sealed with AES-GCM under a key derived (HKDF)
from the application's SECRET_KEY, so a copy of the database alone cannot sign
labels. Changing SECRET_KEY makes the stored private keys unusable: rotate to a
new key afterwards (verification only needs the public keys, stored in clear).
"""

import logging
import os
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine import clock, labelcodes
from engine.db import Base, session
from engine.errors import Conflict, Forbidden, NotFound

logger = logging.getLogger(__name__)

KEY_ADMINS = frozenset({"it", "office"})

_settings = {"secret_key": None}
_private_keys = {}   # (key id, public key bytes) -> Ed25519PrivateKey
_public_keys = {}    # public key bytes -> Ed25519PublicKey


def configure(secret_key):
    """The host's SECRET_KEY, from which the sealing key is derived."""
    _settings["secret_key"] = secret_key


class SigningKey(Base):
    __tablename__ = "label_signing_keys"

    # One byte in every code: ids run from 1 to 255.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    algorithm: Mapped[str] = mapped_column(String(16), default="ed25519")
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    # 12-byte nonce + AES-GCM(private key bytes), see _seal.
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary(128))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)
    retired_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retire_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("id BETWEEN 1 AND 255", name="one_byte_id"),)


def _sealing_key():
    secret = _settings["secret_key"]
    if not secret:
        raise RuntimeError("engine.labels.configure() was not called by the host")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"yjpp label signing key v1").derive(secret.encode("utf-8"))


def _seal(key_id, private_bytes):
    nonce = os.urandom(12)
    return nonce + AESGCM(_sealing_key()).encrypt(nonce, private_bytes, bytes([key_id]))


def _unseal(key):
    sealed = bytes(key.private_key_sealed)
    try:
        return AESGCM(_sealing_key()).decrypt(sealed[:12], sealed[12:], bytes([key.id]))
    except InvalidTag:
        logger.error("signing key %s cannot be unsealed: SECRET_KEY changed?", key.id)
        raise Conflict("签名私钥无法解密（应用密钥已更换），请先轮换签名密钥",
                       key_id=key.id) from None


def private_key(key):
    """The key's private half, unsealed once per process and cached."""
    cache_key = (key.id, bytes(key.public_key))
    private = _private_keys.get(cache_key)
    if private is None:
        private = Ed25519PrivateKey.from_private_bytes(_unseal(key))
        _private_keys[cache_key] = private
    return private


def public_key(key):
    """The key's public half as a cryptography object, cached by its bytes."""
    raw = bytes(key.public_key)
    public = _public_keys.get(raw)
    if public is None:
        public = Ed25519PublicKey.from_public_bytes(raw)
        _public_keys[raw] = public
    return public


def public_key_pem(key):
    """The PEM of a key's public half, for anyone who wants to verify labels offline."""
    return public_key(key).public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def list_signing_keys():
    return session().scalars(select(SigningKey).order_by(SigningKey.id)).all()


def current_key():
    """The newest key: the one that signs new labels (unless it is retired)."""
    return session().scalars(select(SigningKey).order_by(SigningKey.id.desc()).limit(1)).first()


def _check_key_admin(actor):
    if actor is not None and not actor.group_ids & KEY_ADMINS:
        raise Forbidden("只有信息化部门或品牌管理办公室可以管理签名密钥")


def rotate_signing_key(actor=None):
    """Make a new key the one that signs; older keys keep verifying their labels.

    ``actor`` None means the system (the first key, made when the first batch is issued).
    """
    _check_key_admin(actor)
    newest = current_key()
    key_id = 1 if newest is None else newest.id + 1
    if key_id > labelcodes.MAX_KEY_ID:
        # TODO: a two-byte key id (a new code format) once 255 keys have been used.
        raise Conflict("签名密钥编号已用尽")
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw,
                                        serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
    key = SigningKey(id=key_id, algorithm="ed25519", public_key=raw_public,
                     private_key_sealed=_seal(key_id, raw_private), created_at=clock.now(),
                     created_by=getattr(actor, "id", None))
    session().add(key)
    session().flush()
    _private_keys[(key_id, raw_public)] = private
    logger.info("label signing key %s created by user %s", key_id, getattr(actor, "id", None))
    return key


def retire_signing_key(key_id, actor, reason=""):
    """Retire a key (compromised or withdrawn): every label it signed now verifies as revoked."""
    _check_key_admin(actor)
    key = session().get(SigningKey, key_id)
    if key is None:
        raise NotFound("签名密钥不存在", key_id=key_id)
    if key.retired_at is not None:
        raise Conflict("该签名密钥已停用", key_id=key_id)
    key.retired_at = clock.now()
    key.retired_by = getattr(actor, "id", None)
    key.retire_reason = str(reason or "")[:2000]
    session().flush()
    logger.warning("label signing key %s retired by user %s", key_id, key.retired_by)
    return key


def key_for_issuing():
    """The key that signs a new batch: the newest, or a new one if the newest is retired."""
    key = current_key()
    if key is None or key.retired_at is not None:
        # Nothing may be signed with a retired key: a fresh one takes over.
        key = rotate_signing_key(None)
    return key
