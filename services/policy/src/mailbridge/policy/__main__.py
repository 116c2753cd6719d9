"""``python -m mailbridge.policy``: serve until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.policy.bootstrap import SERVICE
from mailbridge.policy.settings import PolicySettings
from mailbridge.shared.service import load_settings, run


def main() -> None:
    asyncio.run(run(SERVICE, load_settings(PolicySettings, SERVICE.name)))


if __name__ == "__main__":
    main()
