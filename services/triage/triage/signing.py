"""Signatures of model artifacts. A model is a pickle, and unpickling runs code: whoever can write
a row of triage's `models` table (a SQL injection elsewhere, a restored backup, a database
operator) must not get code execution in the consumer every station shares. A SHA-256 beside the
artifact in the same row proves nothing against that, so each artifact carries an HMAC-SHA256
under a key the database never holds.

The key is derived from the deployment's FENGQIAO_PII_INDEX_KEY (an HMAC of it with a fixed label),
a secret every service already has and which never rotates, so a new secret is not needed and
signed models stay valid. The derived key is used for nothing else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from fengqiao.settings import Settings

_LABEL = b"fengqiao/triage/model-artifact-signing/v1"


class ModelRejected(Exception):
    """An artifact whose signature is missing or does not verify: it is never unpickled."""


class ModelSigner:
    def __init__(self, deployment_key: bytes) -> None:
        if len(deployment_key) < 32:
            raise ValueError("the deployment key must be at least 32 bytes")
        self._key = hmac.new(deployment_key, _LABEL, hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelSigner | None:
        """None when FENGQIAO_PII_INDEX_KEY is not set (triage then classifies by rules only)."""
        secret = settings.pii_index_key.get_secret_value().strip() if settings.pii_index_key else ""
        if not secret:
            return None
        try:
            return cls(base64.b64decode(secret, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise SystemExit("FENGQIAO_PII_INDEX_KEY is not valid base64 of at least 32 bytes") from exc

    def sign(self, version: str, artifact: bytes) -> str:
        """Bound to the version too, so one signed artifact cannot stand in for another version."""
        mac = hmac.new(self._key, version.encode() + b"\x00", hashlib.sha256)
        mac.update(artifact)
        return mac.hexdigest()

    def verify(self, version: str, artifact: bytes, signature: str | None) -> None:
        if not signature:
            raise ModelRejected("unsigned")
        if not hmac.compare_digest(self.sign(version, bytes(artifact)), signature):
            raise ModelRejected("bad_signature")
