"""The label code: what a QR code on a brand label carries, and how it is checked offline.

A code is the upper-case base32 (RFC 4648, no padding) of 70 bytes::

    key id (1 byte) | serial (5 bytes, big-endian) | Ed25519 signature (64 bytes)

The signature covers a fixed domain tag, the key id and the serial, so a code
cannot be moved to another key or serial. 70 bytes make exactly 112 base32
characters, all in the QR alphanumeric set (A-Z, 2-7), so a URL such as
``HTTP://127.0.0.1:5000/V/<112 chars>`` (136 characters) fits QR version 6 at
error level M (154 alphanumeric characters at most). Anyone holding the public
key of a key id can check a code without the database.

Parsing is strict and never raises: a code of any other length, any lower-case
letter or any character outside A-Z2-7 is simply not a code.
"""

import base64
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

KEY_ID_BYTES = 1
SERIAL_BYTES = 5
SIGNATURE_BYTES = 64
PAYLOAD_BYTES = KEY_ID_BYTES + SERIAL_BYTES + SIGNATURE_BYTES
CODE_LENGTH = PAYLOAD_BYTES * 8 // 5          # 112: 560 bits, no padding
MAX_KEY_ID = 2 ** (8 * KEY_ID_BYTES) - 1
MAX_SERIAL = 2 ** (8 * SERIAL_BYTES) - 1
# Changing this tag invalidates every label ever printed: never change it.
DOMAIN_TAG = b"YJPP-LABEL-1"

_CODE = re.compile(r"[A-Z2-7]{%d}" % CODE_LENGTH)


@dataclass(frozen=True)
class ParsedCode:
    key_id: int
    serial: int
    signature: bytes

    @property
    def message(self):
        return signed_message(self.key_id, self.serial)


def signed_message(key_id, serial):
    """The bytes a label's signature covers."""
    return DOMAIN_TAG + key_id.to_bytes(KEY_ID_BYTES, "big") + serial.to_bytes(SERIAL_BYTES, "big")


def sign(private_key, key_id, serial):
    """The Ed25519 signature of one label (deterministic: signing twice gives the same bytes)."""
    return private_key.sign(signed_message(key_id, serial))


def signer(private_key, key_id):
    """A fast ``sign(serial)`` for one key, for issuing many labels in a loop."""
    prefix = DOMAIN_TAG + key_id.to_bytes(KEY_ID_BYTES, "big")
    sign_bytes = private_key.sign

    def sign_serial(serial):
        return sign_bytes(prefix + serial.to_bytes(SERIAL_BYTES, "big"))
    return sign_serial


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Two base32 digits per 10 bits: the standard library's encoder is pure Python and
# twice as slow, which shows when a 100,000-label batch is exported.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(PAYLOAD_BYTES * 8 - 10, -10, -10)


def encode(key_id, serial, signature):
    """The printable code of a label (RFC 4648 base32 of the payload; no padding needed)."""
    if not 1 <= key_id <= MAX_KEY_ID or not 0 < serial <= MAX_SERIAL:
        raise ValueError("key id or serial out of range")
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError("an Ed25519 signature is 64 bytes")
    raw = (key_id.to_bytes(KEY_ID_BYTES, "big") + serial.to_bytes(SERIAL_BYTES, "big")
           + bytes(signature))
    number = int.from_bytes(raw, "big")
    pairs = _PAIRS
    return "".join([pairs[(number >> shift) & 1023] for shift in _SHIFTS])


def decode(text):
    """A ``ParsedCode``, or None for anything that is not exactly a well-formed code."""
    if not isinstance(text, str) or len(text) != CODE_LENGTH or not _CODE.fullmatch(text):
        return None
    raw = base64.b32decode(text)
    key_id = raw[0]
    serial = int.from_bytes(raw[KEY_ID_BYTES:KEY_ID_BYTES + SERIAL_BYTES], "big")
    if key_id == 0 or serial == 0:
        return None
    return ParsedCode(key_id, serial, raw[KEY_ID_BYTES + SERIAL_BYTES:])


def signature_valid(public_key, parsed):
    """True when ``parsed`` was signed by the private half of ``public_key``."""
    try:
        public_key.verify(parsed.signature, parsed.message)
    except InvalidSignature:
        return False
    return True


def label_url(base_url, code):
    """The URL printed in the QR code: upper case throughout, so QR alphanumeric mode applies.

    Browsers treat the scheme and host case-insensitively, and the app answers both
    ``/V/<code>`` and ``/v/<code>``. ``base_url`` is the public site root without a path.
    """
    return f"{base_url.rstrip('/').upper()}/V/{code}"
