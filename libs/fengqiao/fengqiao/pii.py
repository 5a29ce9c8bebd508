"""Personal data at rest: AES-256-GCM with named keys, and phone number normalisation.

Keys come from settings as `kid:base64key[,kid:base64key…]`; the first is used to encrypt, all
are accepted to decrypt, so a key is rotated by putting a new one first and re-encrypting at
leisure. Each ciphertext is bound to its row and field through the associated data, so a value
copied into another row does not decrypt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class PiiKeyError(ValueError):
    pass


def new_key_setting(kid: str = "k1") -> str:
    """A fresh `kid:base64key` for FENGQIAO_PII_KEYS."""
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


@dataclass(frozen=True)
class Sealed:
    kid: str
    blob: bytes  # nonce + ciphertext + tag


class PiiCipher:
    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise PiiKeyError("the active key is not among the keys")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active = active

    @classmethod
    def from_setting(cls, value: str | None) -> PiiCipher:
        if not value:
            raise PiiKeyError(
                "FENGQIAO_PII_KEYS is not set (format: kid:base64key[,kid:base64key]; "
                "`fengqiao dev` creates one for development)"
            )
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for part in value.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid:
                raise PiiKeyError("each key must be written kid:base64key")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise PiiKeyError(f"key {kid!r} is not valid base64") from exc
            if len(key) != 32:
                raise PiiKeyError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            keys[kid] = key
            order.append(kid)
        return cls(keys, order[0])

    def seal(self, plaintext: bytes, *, context: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        return Sealed(self.active, nonce + self._aead[self.active].encrypt(nonce, plaintext, context.encode()))

    def open(self, sealed: Sealed, *, context: str) -> bytes:
        aead = self._aead.get(sealed.kid)
        if aead is None:
            raise PiiKeyError(f"no key {sealed.kid!r} to decrypt with")
        return aead.decrypt(sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:], context.encode())

    def seal_json(self, value: dict[str, Any], *, context: str) -> Sealed:
        return self.seal(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(), context=context)

    def open_json(self, sealed: Sealed, *, context: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.open(sealed, context=context))  # what seal_json sealed
        return value


class BlindIndex:
    """A keyed hash (HMAC-SHA256) of a normalised value, to find equal values (the same caller's
    number) without storing them in the clear. Its key is separate from the encryption keys and
    must not change, or existing index values stop matching."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise PiiKeyError("the index key must be at least 32 bytes")
        self._key = key

    @classmethod
    def from_setting(cls, value: str | None) -> BlindIndex:
        if not value:
            raise PiiKeyError(
                "FENGQIAO_PII_INDEX_KEY is not set (base64 of 32 random bytes; "
                "`fengqiao dev` creates one for development)"
            )
        try:
            return cls(base64.b64decode(value.strip(), validate=True))
        except ValueError as exc:
            raise PiiKeyError("FENGQIAO_PII_INDEX_KEY is not valid base64") from exc

    def of(self, value: str, *, purpose: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def new_index_key_setting() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def normalise_phone(raw: str, region: str = "CN") -> str:
    """E.164 form of a phone number written the way people write them ("138 0013 8000",
    "+86-10-12345678", "010 1234 5678"); ValueError if it is not a possible number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# -- masking: personal data shown to staff until they ask (and are logged) to see it -------------

_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE_IN_TEXT = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{3,4})(\d{4})(?!\d)")
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
# Bounded and ASCII, as triage's: an unbounded local part rescanned from every position is slow.
_EMAIL_IN_TEXT = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{0,63}(@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8})"
)


def mask_name(name: str) -> str:
    """赵六 -> 赵*, 欧阳娜娜 -> 欧***: the family name stays, so staff can still address the person."""
    name = name.strip()
    return name[:1] + "*" * (len(name) - 1) if name else ""


def mask_phone(phone: str) -> str:
    """+8613800005678 -> 138****5678; other numbers keep their last four digits."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]}****{digits[7:]}"
    return "*" * max(len(digits) - 4, 0) + digits[-4:] if digits else ""


def mask_email(email: str) -> str:
    return _EMAIL_IN_TEXT.sub(lambda m: f"{m.group(1)}***{m.group(2)}", email.strip())


def mask_text(text: str, names: tuple[str, ...] = ()) -> str:
    """The text with phone numbers (138****5678), ID card numbers (110101********1234), e-mail
    addresses (z***@example.com) and the given names (the reporter's own: 赵*) masked. Names of
    other people are not recognised in free text; that is what the logged reveal is for."""
    text = _EMAIL_IN_TEXT.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)
    text = _ID_IN_TEXT.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE_IN_TEXT.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    for name in sorted({n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True):
        text = text.replace(name, mask_name(name))
    return text


def mask_reporter(reporter: dict[str, Any]) -> dict[str, Any]:
    """A reporter block (name, phone, email, flags) with its personal data masked."""
    return reporter | {
        "name": mask_name(reporter.get("name") or ""),
        "phone": mask_phone(reporter.get("phone") or ""),
        "email": mask_email(reporter.get("email") or ""),
    }
