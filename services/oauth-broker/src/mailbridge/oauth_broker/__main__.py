"""``python -m mailbridge.oauth_broker``: serve until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.oauth_broker.bootstrap import SERVICE
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.shared.service import load_settings, run


def main() -> None:
    asyncio.run(run(SERVICE, load_settings(OAuthBrokerSettings, SERVICE.name)))


if __name__ == "__main__":
    main()
