"""Scopes as the providers spell them back: compared case-insensitively, Graph's resource prefix
optional, and the OpenID scopes (which Microsoft does not echo) never required."""

from __future__ import annotations

from collections.abc import Iterable

OPENID_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
_GRAPH_PREFIX = "https://graph.microsoft.com/"
_GOOGLE_IDENTITY = {  # what Google answers for the OpenID scopes asked as bare names
    "https://www.googleapis.com/auth/userinfo.email": "email",
    "https://www.googleapis.com/auth/userinfo.profile": "profile",
}


def normalized(scope: str) -> str:
    lowered = scope.strip().lower()
    lowered = _GOOGLE_IDENTITY.get(lowered, lowered)
    return lowered.removeprefix(_GRAPH_PREFIX)


def split(scopes: str) -> list[str]:
    return [scope for scope in scopes.split() if scope]


def required(requested: Iterable[str]) -> list[str]:
    """The requested scopes a grant must carry to be kept: all but the OpenID ones."""
    return [scope for scope in requested if normalized(scope) not in OPENID_SCOPES]


def missing(required_scopes: Iterable[str], granted: Iterable[str]) -> list[str]:
    have = {normalized(scope) for scope in granted}
    return [scope for scope in required_scopes if normalized(scope) not in have]


def union(*groups: Iterable[str]) -> list[str]:
    """The scopes of every group, each once (first spelling wins), in order."""
    seen: dict[str, str] = {}
    for group in groups:
        for scope in group:
            seen.setdefault(normalized(scope), scope)
    return list(seen.values())
