"""API keys and who they let in, as pure rules.

A key reads ``mbk_<key_id>_<secret>``: the key id finds the row, the secret is checked against its
SHA-256 (the secret is 256 random bits, so a fast hash is enough and keeps auth cheap). An operator
key reaches every org; an org key reaches only its own org's agents; an Email tab session
(``domain/ui_sessions.py``) reaches one agent of one org.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "mbk"


@dataclass(frozen=True)
class Principal:
    key_id: str
    org_id: str | None  # None: an operator key
    agent_id: str | None = None  # set: an Email tab session, which reaches this one agent only
    expires_at: datetime | None = None  # a session's end: what it opened (a live feed) ends too

    @property
    def is_operator(self) -> bool:
        return self.org_id is None

    def can_access(self, org_id: str, agent_id: str | None = None) -> bool:
        """Whether the caller reaches ``org_id`` (and, when named, its agent ``agent_id``); a
        principal scoped to one agent reaches nothing that does not name that agent."""
        if self.agent_id is not None and agent_id != self.agent_id:
            return False
        return self.is_operator or self.org_id == org_id


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    org_id: str | None
    name: str
    secret_hash: str
    revoked: bool


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str
    secret_hash: str


def new_key() -> NewKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"{PREFIX}_{key_id}_{secret}", hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def verify(stored: StoredKey | None, secret: str) -> Principal | None:
    if stored is None or stored.revoked:
        return None
    if not hmac.compare_digest(stored.secret_hash, hash_secret(secret)):
        return None
    return Principal(stored.key_id, stored.org_id)
