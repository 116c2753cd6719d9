"""Where each provider's endpoints are for one app, and how its requests differ.

Microsoft: endpoints under ``{authority}/{tenant}``; one token per resource, so a refresh names the
resource's scopes (the refresh token itself serves both Graph and outlook.office.com); a new
refresh token on every use. Google: fixed endpoints from settings; ``access_type=offline`` and
``prompt=consent`` or no refresh token comes back; the refresh token does not rotate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailbridge.oauth_broker.domain import scopes
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.messages import OAuthApp, Provider, TokenResource

DEFAULT_TENANT = "common"


@dataclass(frozen=True)
class ProviderProfile:
    provider: Provider
    authorization_url: str
    token_url: str
    discovery_url: str
    revocation_url: str | None
    sign_in_scopes: list[str]
    authorize_params: dict[str, str] = field(default_factory=dict)
    refresh_scopes: dict[TokenResource, list[str]] = field(default_factory=dict)

    def refresh_scope(self, resource: TokenResource) -> str | None:
        """The ``scope`` a refresh sends: Microsoft's, one resource's; Google's, none."""
        asked = self.refresh_scopes.get(resource)
        return " ".join(asked) if asked else None


def profile_for(app: OAuthApp, settings: OAuthBrokerSettings) -> ProviderProfile:
    if app.provider is Provider.MICROSOFT:
        return _microsoft(app, settings)
    return _google(settings)


def _microsoft(app: OAuthApp, settings: OAuthBrokerSettings) -> ProviderProfile:
    base = f"{settings.microsoft_authority.rstrip('/')}/{app.tenant_id or DEFAULT_TENANT}"
    sign_in = scopes.split(settings.microsoft_scopes)
    offline = ["offline_access"]
    return ProviderProfile(
        provider=Provider.MICROSOFT,
        authorization_url=f"{base}/oauth2/v2.0/authorize",
        token_url=f"{base}/oauth2/v2.0/token",
        discovery_url=f"{base}/v2.0/.well-known/openid-configuration",
        revocation_url=None,  # Microsoft has no per-grant revocation
        sign_in_scopes=sign_in,
        authorize_params={"response_mode": "query", "prompt": "select_account"},
        refresh_scopes={
            TokenResource.API: scopes.union(offline, scopes.required(sign_in)),
            TokenResource.MAIL: scopes.union(offline, scopes.split(settings.microsoft_mail_scopes)),
        },
    )


def _google(settings: OAuthBrokerSettings) -> ProviderProfile:
    return ProviderProfile(
        provider=Provider.GOOGLE,
        authorization_url=settings.google_authorization_url,
        token_url=settings.google_token_url,
        discovery_url=settings.google_discovery_url,
        revocation_url=settings.google_revocation_url,
        sign_in_scopes=scopes.split(settings.google_scopes),
        authorize_params={
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        },
    )


def issuer_matches(expected: str, issuer: str, tenant_id: str | None = None) -> bool:
    """Microsoft's multi-tenant discovery names its issuer ``…/{tenantid}/v2.0``."""
    if "{tenantid}" not in expected:
        return issuer == expected
    if tenant_id is not None:
        return issuer == expected.replace("{tenantid}", tenant_id)
    prefix, suffix = expected.split("{tenantid}", 1)
    middle = issuer.removeprefix(prefix).removesuffix(suffix)
    return (
        issuer.startswith(prefix) and issuer.endswith(suffix) and "/" not in middle and middle != ""
    )
