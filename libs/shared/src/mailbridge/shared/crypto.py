"""Sealing secrets at rest: AES-256-GCM, a key id in every ciphertext, the row id as associated
data.

A sealed value is ``{key_id}.{base64url(nonce || ciphertext+tag)}``. The owning row's id is the
associated data, so a ciphertext copied into another row fails to open. Several keys may be
configured: the first seals, every one opens, so keys rotate without downtime.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SealingError(Exception):
    """A sealed value could not be opened (unknown key, tampered, or moved to another row)."""


class SealingKeyError(ValueError):
    """The configured keys are missing or malformed."""


@dataclass(frozen=True)
class SealingKey:
    key_id: str
    key: bytes

    def __repr__(self) -> str:
        return f"SealingKey(key_id={self.key_id!r}, key=<hidden>)"


def parse_keys(text: str) -> list[SealingKey]:
    """Parse ``kid1:BASE64,kid2:BASE64``; refuses anything but 32-byte keys."""
    keys = [_parse_key(item.strip()) for item in text.split(",") if item.strip()]
    if not keys:
        raise SealingKeyError("no sealing key configured: set MAILBRIDGE_SEALING_KEYS")
    if len({k.key_id for k in keys}) != len(keys):
        raise SealingKeyError("sealing key ids must be unique")
    return keys


def _parse_key(item: str) -> SealingKey:
    key_id, sep, encoded = item.partition(":")
    if not sep or not _KEY_ID.match(key_id):
        raise SealingKeyError("each sealing key must look like KEY_ID:BASE64")
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError as exc:
        raise SealingKeyError(f"sealing key {key_id!r} is not base64") from exc
    if len(key) != 32:
        raise SealingKeyError(f"sealing key {key_id!r} must be 32 bytes (AES-256)")
    return SealingKey(key_id, key)


def generate_key_spec(key_id: str) -> str:
    """A new ``KEY_ID:BASE64`` entry, for development stacks and key rotation."""
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('=')}"


class Sealer:
    def __init__(self, keys: list[SealingKey]) -> None:
        if not keys:
            raise SealingKeyError("no sealing key configured")
        self._sealing = keys[0]
        self._by_id = {k.key_id: AESGCM(k.key) for k in keys}

    @property
    def current_key_id(self) -> str:
        return self._sealing.key_id

    def seal(self, plaintext: str, row_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._by_id[self._sealing.key_id]
        sealed = cipher.encrypt(nonce, plaintext.encode(), row_id.encode())
        return f"{self._sealing.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, row_id: str) -> str:
        key_id, _, body = sealed.partition(".")
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise SealingError(f"sealed with unknown key {key_id!r}")
        raw = base64.urlsafe_b64decode(body)
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], row_id.encode())
        except InvalidTag as exc:
            raise SealingError("sealed value does not open for this row") from exc
        return plain.decode()

    def key_id_of(self, sealed: str) -> str:
        return sealed.partition(".")[0]
