"""``python -m mailbridge.policy``: serve until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.policy.bootstrap import SERVICE
from mailbridge.policy.settings import PolicySettings


def main() -> None:
    settings = PolicySettings()  # required values come from the environment
    asyncio.run(SERVICE.serve(settings))


if __name__ == "__main__":
    main()
