"""Scopes as the providers spell them back: compared case-insensitively, Graph's resource prefix
optional, and the OpenID scopes (which Microsoft does not echo) never required; nor Microsoft's
outlook.office.com ones (IMAP/SMTP), which a Graph token's answer never echoes."""

from __future__ import annotations

from collections.abc import Iterable

OPENID_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
GOOGLE_MAIL = "https://mail.google.com/"  # what Gmail's IMAP and SMTP accept a token for
# A Microsoft code redeems for one resource (Graph, the sign-in's), and its answer echoes only
# that resource's scopes; the IMAP/SMTP ones are consented all the same, and a refused mail token
# refresh (AADSTS65001) says so later: oauth_scope_missing, the grant kept for Graph.
_OTHER_RESOURCES = ("https://outlook.office.com/",)
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
    """The requested scopes a grant must carry to be kept: all but the OpenID ones (and another
    Microsoft resource's)."""
    return [
        scope
        for scope in requested
        if normalized(scope) not in OPENID_SCOPES
        and not normalized(scope).startswith(_OTHER_RESOURCES)
    ]


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
