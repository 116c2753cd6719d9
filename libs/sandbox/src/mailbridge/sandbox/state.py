"""Everything the sandbox remembers, in memory: clients, users, grants, codes, tokens, switches,
mailboxes.

One event loop serves every request and no method awaits, so plain dict operations are atomic.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from joserfc.jwk import RSAKey

from mailbridge.sandbox.mailstore import Mailbox
from mailbridge.sandbox.traffic import Traffic

Provider = Literal["google", "microsoft"]
PROVIDERS: tuple[Provider, ...] = ("google", "microsoft")
# "api" is the connection test's calls and, as a fallback, every mail call; "send" is
# messages.send and sendMail; "sync" is every read (history, list, get, delta, $value, search)
ENDPOINTS = ("authorize", "code_exchange", "refresh", "revoke", "api", "send", "sync")
CODE_LIFETIME_SECONDS = 600


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    secret_expired: bool = False


@dataclass
class User:
    email: str
    upn: str
    mail: str


@dataclass
class Grant:
    """What one user consented to one client, and the refresh tokens issued on it."""

    client_id: str
    email: str
    scopes: set[str] = field(default_factory=set)
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class AuthRequest:
    """An authorization request waiting for the person's answer on the consent page."""

    provider: Provider
    client_id: str
    redirect_uri: str
    scopes: list[str]
    params: dict[str, str]


@dataclass
class Code:
    request: AuthRequest
    email: str
    scopes: list[str]
    offline: bool
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    grant_key: tuple[str, str, str]
    resource: str
    tenant: str = ""
    used: bool = False


@dataclass
class AccessToken:
    grant_key: tuple[str, str, str]
    resource: str
    scopes: list[str]
    expires_at: float

    @property
    def provider(self) -> str:
        return self.grant_key[0]

    @property
    def email(self) -> str:
        return self.grant_key[2]


@dataclass
class Failure:
    endpoint: str
    kind: str
    times: int | None = None
    delay_seconds: float = 0.0
    scope: str | None = None
    retry_after: int = 1


@dataclass
class ProviderSettings:
    access_token_lifetime: int = 3599
    revoke_used_refresh_tokens: bool = False
    max_json_send_bytes: int = 5 * 1024 * 1024


@dataclass
class ProviderState:
    """One look-alike's world; the two providers share nothing."""

    name: Provider
    key: RSAKey
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    grants: dict[tuple[str, str, str], Grant] = field(default_factory=dict)
    requests: dict[str, AuthRequest] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    settings: ProviderSettings = field(default_factory=ProviderSettings)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    traffic: Traffic = field(default_factory=Traffic)
    # every secret issued or received (codes, PKCE verifiers, tokens), for the leak tests
    secrets_seen: list[tuple[str, str]] = field(default_factory=list)

    def saw_secret(self, kind: str, value: str) -> None:
        if value:
            self.secrets_seen.append((kind, value))

    def find_user(self, login: str) -> User | None:
        """The user known as ``login`` (email or UPN)."""
        for user in self.users.values():
            if login.lower() in (user.email.lower(), user.upn.lower()):
                return user
        return None

    def user(self, login: str) -> User:
        """The user signing in as ``login``, created on first sign-in."""
        found = self.find_user(login)
        return found or self.users.setdefault(login, User(email=login, upn=login, mail=login))

    def recipient(self, address: str) -> User | None:
        """The user mail to ``address`` reaches: by email, UPN or mail address."""
        wanted = address.lower()
        for user in self.users.values():
            if wanted in (user.email.lower(), user.upn.lower(), user.mail.lower()):
                return user
        return None

    def mailbox(self, user: User) -> Mailbox:
        """``user``'s mailbox, empty until mail arrives (or ``add_user`` seeded it)."""
        return self.mailboxes.setdefault(user.email, Mailbox(self.name))

    def grant(self, client_id: str, email: str) -> Grant:
        key = (self.name, client_id, email)
        return self.grants.setdefault(key, Grant(client_id=client_id, email=email))

    def issue_refresh_token(self, grant: Grant, resource: str, tenant: str = "") -> str:
        token = _token("1//" if self.name == "google" else "M.R3_")
        key = (self.name, grant.client_id, grant.email)
        self.refresh_tokens[token] = RefreshToken(key, resource, tenant)
        grant.refresh_tokens.append(token)
        self.saw_secret("refresh token", token)
        return token

    def issue_access_token(self, grant: Grant, resource: str, scopes: list[str]) -> str:
        token = _token("ya29." if self.name == "google" else "EwB")
        expires_at = time.time() + self.settings.access_token_lifetime
        key = (self.name, grant.client_id, grant.email)
        self.access_tokens[token] = AccessToken(key, resource, scopes, expires_at)
        self.saw_secret("access token", token)
        return token

    def live_access_token(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        return found if found is not None and found.expires_at > time.time() else None

    def end_grant(self, key: tuple[str, str, str]) -> None:
        """The grant dies with every token issued on it; what was consented is forgotten."""
        self.grants.pop(key, None)
        for store in (self.refresh_tokens, self.access_tokens):
            for token in [t for t, found in store.items() if found.grant_key == key]:
                del store[token]

    def take_failure(self, endpoint: str) -> Failure | None:
        """The first switched-on failure for ``endpoint``, used up once."""
        for failure in self.failures:
            if failure.endpoint == endpoint:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    def take_mail_failure(self, endpoint: str) -> Failure | None:
        """A failure for ``endpoint``, else one for ``api``, which covers every mail call."""
        return self.take_failure(endpoint) or self.take_failure("api")


@dataclass
class SandboxState:
    public_url: str
    google: ProviderState
    microsoft: ProviderState

    @classmethod
    def create(cls, public_url: str) -> SandboxState:
        return cls(public_url.rstrip("/"), _provider("google"), _provider("microsoft"))

    def provider(self, name: str) -> ProviderState:
        if name not in PROVIDERS:
            raise ValueError(f"unknown provider {name!r}")
        return self.google if name == "google" else self.microsoft


def _provider(name: Provider) -> ProviderState:
    key = RSAKey.generate_key(2048, parameters={"kid": f"{name}-{secrets.token_hex(4)}"})
    return ProviderState(name=name, key=key)


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_urlsafe(16)
