"""Secrets at rest: Fernet with rotation, key hints and virtual-key hashing.

``TURNOUT_ENCRYPTION_KEYS`` holds one or more Fernet keys, comma separated; the first
encrypts, all decrypt, so a new key is introduced by prepending it and running
``turnout keys rotate`` (which re-encrypts every stored secret with the first key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from turnout_common.errors import ConfigurationError

VIRTUAL_KEY_PREFIX = "tk-"


class DecryptionError(Exception):
    """A ciphertext no configured key can open."""


def generate_key() -> str:
    """A fresh Fernet key (url-safe base64, 32 bytes)."""
    return Fernet.generate_key().decode()


class KeyRing:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(
                "no encryption key configured: set TURNOUT_ENCRYPTION_KEYS "
                "(generate one with `turnout keys generate`)"
            )
        try:
            self._fernets = [Fernet(k.encode()) for k in keys]
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "TURNOUT_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from exc
        self._multi = MultiFernet(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("ciphertext does not open with any configured key") from exc

    def is_current(self, token: str) -> bool:
        """True if ``token`` is already encrypted with the newest key."""
        try:
            self._fernets[0].decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the newest key (keeps its original timestamp)."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("ciphertext does not open with any configured key") from exc


def key_hint(plaintext: str) -> str:
    """A display hint from the *plaintext* key: ``sk-…5678``. Never reveals more than 7 chars."""
    if len(plaintext) < 12:
        return "…" + plaintext[-2:] if len(plaintext) >= 6 else "…"
    prefix = plaintext[:3]
    return f"{prefix}…{plaintext[-4:]}"


def new_virtual_key() -> str:
    """A new data-plane key: ``tk-`` + 43 url-safe characters (256 bits)."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_virtual_key(key: str) -> str:
    """SHA-256 hex digest of a virtual key (keys are high-entropy; no salt needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
