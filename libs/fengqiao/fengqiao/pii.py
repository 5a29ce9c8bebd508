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
