"""``python -m mailbridge.mail_worker``: consume mail commands until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.mail_worker.bootstrap import SERVICE
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.service import load_settings, run


def main() -> None:
    asyncio.run(run(SERVICE, load_settings(MailWorkerSettings, SERVICE.name)))


if __name__ == "__main__":
    main()
