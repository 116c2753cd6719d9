"""ApprovalExpiry: every few seconds, held sends nobody decided in time end ``rejected``.

Every config-api replica runs it; the ledger takes only the rows it can lock, so replicas never
expire one send twice, nor one a person is deciding at that moment.
"""

from __future__ import annotations

import asyncio
import logging

from mailbridge.config_api.handlers import approvals
from mailbridge.config_api.ports import Approvals
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.background import BackgroundLoop
from mailbridge.shared.clock import Clock
from mailbridge.shared.content import ContentStore

log = logging.getLogger(__name__)


class ApprovalExpiry(BackgroundLoop):
    name = "approval-expiry"

    def __init__(
        self,
        ledger: Approvals,
        content: ContentStore,
        clock: Clock,
        settings: ConfigApiSettings,
    ) -> None:
        self._ledger, self._content, self._clock = ledger, content, clock
        self._lifetime, self._every = (
            settings.approval_lifetime(),
            settings.approval_sweep_seconds(),
        )

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the database is down: the next round tries again
                log.warning("approval expiry round failed", exc_info=True)
            await asyncio.sleep(self._every)

    async def sweep(self) -> int:
        expired = await approvals.expire_holds(
            approvals=self._ledger, content=self._content, clock=self._clock,
            lifetime=self._lifetime,
        )  # fmt: skip
        if expired:
            log.info("%d held sends expired unapproved", expired)
        return expired
