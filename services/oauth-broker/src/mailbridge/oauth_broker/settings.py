"""oauth-broker settings (``MAILBRIDGE_*``)."""

from __future__ import annotations

from mailbridge.shared.settings import DatabaseSettings


class OAuthBrokerSettings(DatabaseSettings):
    pass
