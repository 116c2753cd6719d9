"""oauth-broker settings (``MAILBRIDGE_*``): where the providers are, what to ask them for."""

from __future__ import annotations

from pydantic import Field

from mailbridge.shared.settings import DatabaseSettings, ProviderEndpoints, PublicAddress

GRAPH_SCOPES = "openid email profile offline_access User.Read Mail.ReadWrite Mail.Send"
OUTLOOK_MAIL_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send"
)
GMAIL_SCOPES = "openid email https://www.googleapis.com/auth/gmail.modify"


class OAuthBrokerSettings(DatabaseSettings, ProviderEndpoints, PublicAddress):
    microsoft_scopes: str = Field(
        default=GRAPH_SCOPES, description="asked at Microsoft sign-in (space-separated)"
    )
    microsoft_mail_scopes: str = Field(
        default=OUTLOOK_MAIL_SCOPES,
        description="the outlook.office.com scopes a token for IMAP/SMTP XOAUTH2 is refreshed with",
    )
    google_scopes: str = Field(
        default=GMAIL_SCOPES, description="asked at Google sign-in (space-separated)"
    )
    flow_lifetime_seconds: int = 600
    token_min_valid_seconds: int = Field(
        default=300, description="an access token handed out stays valid at least this long"
    )
    idle_refresh_after_hours: float = Field(
        default=24 * 7,
        description="grants not refreshed for this long are refreshed, before the providers' "
        "inactivity limits (Microsoft 90 days, Google 6 months)",
    )
    provider_timeout_seconds: float = 20.0
    config_api_timeout_seconds: float = 5.0
