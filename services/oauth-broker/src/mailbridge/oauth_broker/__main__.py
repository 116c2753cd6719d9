"""``python -m mailbridge.oauth_broker``: serve until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.oauth_broker.bootstrap import SERVICE
from mailbridge.oauth_broker.settings import OAuthBrokerSettings


def main() -> None:
    settings = OAuthBrokerSettings()  # required values come from the environment
    asyncio.run(SERVICE.serve(settings))


if __name__ == "__main__":
    main()
