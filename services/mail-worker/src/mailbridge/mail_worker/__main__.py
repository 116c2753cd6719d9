"""``python -m mailbridge.mail_worker``: consume mail commands until SIGTERM."""

from __future__ import annotations

import asyncio

from mailbridge.mail_worker.bootstrap import build_worker
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.runtime import run_service


async def serve(settings: MailWorkerSettings) -> None:
    worker = build_worker(settings)
    await run_service(
        worker.broker,
        settings,
        worker.readiness,
        before_start=worker.prepare_streams,
        on_stop=worker.close,
        registry=worker.metrics.registry,
    )


def main() -> None:
    asyncio.run(serve(MailWorkerSettings()))


if __name__ == "__main__":
    main()
